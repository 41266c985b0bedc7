"""sdxl failure paths: bad inputs (all reported at once), NaN/black output, OOM, payload limit, startup."""

from __future__ import annotations

import base64
import contextlib
import io

import httpx
import pytest
import torch

from shared.payload import Bucket


def fields(error: dict) -> dict[str, str]:
    return {problem["field"]: problem["reason"] for problem in error["problems"]}


def test_every_bad_field_is_reported_at_once(check, run_job):
    result = run_job({"prompt": "", "width": 65, "height": 4096, "num_inference_steps": 0, "guidance_scale": -1,
                      "seed": -1, "num_images": 9, "scheduler": "lms", "format": "gif", "quality": 0, "colour": "red"})
    error = check.envelope(result)
    assert error["code"] == "BAD_INPUT" and error["retryable"] is False
    assert set(fields(error)) == {"prompt", "width", "height", "num_inference_steps", "guidance_scale", "seed",
                                  "num_images", "scheduler", "format", "quality", "colour"}
    assert "multiple of 8" in fields(error)["width"]
    assert fields(error)["colour"] == "unknown field"


@pytest.mark.parametrize(
    ("job_input", "field"),
    [
        ({"prompt": "x", "strength": 0.5}, "strength"),
        ({"prompt": "x", "width": 2048, "height": 2048, "num_images": 2}, "num_images"),
        ({"prompt": "x", "refine": True, "image": "aGVsbG8="}, "refine"),
        ({"prompt": "x", "image": "not base64!"}, "image"),
        ({"prompt": "x", "image": base64.b64encode(b"GIF89a" + b"\0" * 30).decode()}, "image"),
        ({"prompt": "x", "image": base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 30).decode()}, "image"),
        ({"prompt": 42}, "prompt"),
    ],
    ids=["strength-without-image", "too-many-pixels", "refine-with-img2img", "image-not-base64",
         "image-not-png-jpeg-webp", "image-damaged", "prompt-not-text"],
)
def test_inconsistent_or_unreadable_input_is_bad_input(check, run_job, job_input, field):
    error = check.envelope(run_job(job_input))
    assert error["code"] == "BAD_INPUT"
    assert field in fields(error)


def test_non_object_input_is_bad_input(check, run_job):
    error = check.envelope(run_job(["a", "list"]))
    assert (error["code"], list(fields(error))) == ("BAD_INPUT", ["input"])


def test_img2img_source_over_the_byte_limit_is_refused_before_decoding(check, run_job):
    from worker_sdxl.inputs import MAX_IMAGE_BYTES

    huge = "A" * ((MAX_IMAGE_BYTES // 3 + 1) * 4)  # valid base64 alphabet: only its length is looked at
    error = check.envelope(run_job({"prompt": "x", "image": huge}))
    assert error["code"] == "INPUT_TOO_LARGE" and "image" in fields(error)


def test_img2img_source_over_the_pixel_limit_is_refused_from_its_header(check, run_job):
    error = check.envelope(run_job({"prompt": "x", "image": check.png_b64(3000, 2000)}))
    assert error["code"] == "INPUT_TOO_LARGE" and "pixels" in fields(error)["image"]


def test_img2img_source_too_small_to_keep_its_size_says_to_set_one(check, run_job):
    error = check.envelope(run_job({"prompt": "x", "image": check.png_b64(40, 64)}))
    assert error["code"] == "BAD_INPUT" and "`width`" in fields(error)["image"]
    # ...and an explicit size makes the same source usable.
    result = run_job({"prompt": "x", "image": check.png_b64(40, 64), "width": 64, "num_inference_steps": 2})
    assert check.decode(result["images"][0]).size == (64, 64)


@contextlib.contextmanager
def vae_output_bias(worker, value: float):
    """Force every decoded pixel towards ``value`` by replacing the VAE's last bias (and zeroing its weight)."""
    conv = worker.pipelines.text2img.vae.decoder.conv_out
    saved = {name: tensor.clone() for name, tensor in conv.state_dict().items()}
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.fill_(value)
    try:
        yield
    finally:
        conv.load_state_dict(saved)


@pytest.mark.parametrize(("bias", "words"), [(float("nan"), "NaN"), (-50.0, "all black")], ids=["nan", "black"])
def test_nan_or_black_images_are_reported_not_returned(check, run_job, worker, bias, words):
    with vae_output_bias(worker, bias):
        error = check.envelope(run_job({"prompt": "x", **check.SMALL, "seed": 1}))
    assert error["code"] == "INVALID_OUTPUT" and words in error["message"] and "VAE_PATH" in error["message"]
    assert check.decode(run_job({"prompt": "x", **check.SMALL, "seed": 1})["images"][0]).size == (64, 64)


def test_out_of_memory_is_reported_and_the_worker_keeps_serving(check, run_job, worker, monkeypatch):
    unet = worker.pipelines.text2img.unet

    def exhausted(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(unet, "forward", exhausted)
    error = check.envelope(run_job({"prompt": "x", **check.SMALL, "num_images": 3}))
    assert (error["code"], error["retryable"]) == ("GPU_OUT_OF_MEMORY", True)
    assert "3 image(s) of 64x64" in error["message"]
    monkeypatch.undo()
    assert worker.pipelines._lock.acquire(blocking=False)  # the failed job released the GPU
    worker.pipelines._lock.release()
    assert check.decode(run_job({"prompt": "x", **check.SMALL})["images"][0]).size == (64, 64)


def test_result_over_the_limit_without_a_bucket_names_the_knobs(check, run_job, worker, monkeypatch):
    monkeypatch.setattr(worker, "response_limit", 2000)
    monkeypatch.setattr(worker, "bucket", None)
    error = check.envelope(run_job({"prompt": "x", **check.SMALL, "num_images": 2}))
    assert error["code"] == "OUTPUT_TOO_LARGE"
    assert "MAX_RESPONSE_BYTES" in error["message"] and "BUCKET_ENDPOINT_URL" in error["message"]


def test_result_over_the_limit_goes_to_the_bucket_as_urls(check, run_job, worker, monkeypatch, s3_bucket):
    endpoint, name, client = s3_bucket
    monkeypatch.setattr(worker, "response_limit", 2000)
    monkeypatch.setattr(worker, "bucket", Bucket(endpoint, "test", "test", name=name))
    result = run_job({"prompt": "x", **check.SMALL, "num_images": 2, "format": "png", "seed": 11}, job_id="big-job")

    assert result["delivery"] == "url" and [e["seed"] for e in result["images"]] == [11, 12]
    assert all("image" not in entry for entry in result["images"])
    keys = sorted(obj["Key"] for obj in client.list_objects_v2(Bucket=name)["Contents"])
    assert keys == ["big-job/0.png", "big-job/1.png"]
    from PIL import Image

    uploaded = Image.open(io.BytesIO(httpx.get(result["images"][0]["url"]).content))
    assert (uploaded.format, uploaded.size) == ("PNG", (64, 64))


def test_small_results_stay_inline_even_with_a_bucket(check, run_job, worker, monkeypatch, s3_bucket):
    endpoint, name, client = s3_bucket
    monkeypatch.setattr(worker, "bucket", Bucket(endpoint, "test", "test", name=name))
    result = run_job({"prompt": "x", **check.SMALL})
    assert result["delivery"] == "inline" and "Contents" not in client.list_objects_v2(Bucket=name)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"MODEL_PATH": ""}, "MODEL_PATH is not set"),
        ({"MODEL_PATH": "/nonexistent/model"}, "not a folder"),
        ({"REFINER_PATH": "/nonexistent/refiner"}, "REFINER_PATH"),
        ({"MAX_RESPONSE_BYTES": "lots"}, "MAX_RESPONSE_BYTES"),
        ({"PROGRESS_INTERVAL_S": "often"}, "PROGRESS_INTERVAL_S"),
        ({"PROGRESS_INTERVAL_S": "-1"}, "PROGRESS_INTERVAL_S"),
    ],
)
def test_setup_fails_fast_on_bad_settings_with_a_startup_error(monkeypatch, tiny_sdxl_dir, env, words):
    from shared.errors import StartupError
    from worker_sdxl.worker import SdxlWorker

    monkeypatch.setenv("MODEL_PATH", str(tiny_sdxl_dir))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(StartupError, match=words):
        SdxlWorker().setup()


def test_a_model_folder_without_a_pipeline_is_a_startup_error(monkeypatch, tmp_path):
    from shared.errors import StartupError
    from worker_sdxl.worker import SdxlWorker

    monkeypatch.setenv("MODEL_PATH", str(tmp_path))
    with pytest.raises(StartupError, match=r"holds no model \(no model_index.json\)") as info:
        SdxlWorker().setup()
    assert "MODEL_PATH" in info.value.fix


def test_a_worker_that_was_not_set_up_is_not_ready(check):
    import asyncio

    from shared.guard import guard
    from worker_sdxl.worker import SdxlWorker

    result = asyncio.run(guard(SdxlWorker().handler)({"id": "j", "input": {"prompt": "x"}}))
    assert check.envelope(result)["code"] == "NOT_READY"


def test_the_shipped_test_input_is_valid(repo):
    import json

    from shared.validation import parse
    from worker_sdxl.inputs import Input

    request = parse(Input, json.loads((repo / "workers/sdxl/test_input.json").read_text())["input"])
    assert (request.width, request.height, request.format) == (1024, 1024, "jpeg")


def test_model_toml_pins_the_base_model_and_its_extras(repo):
    import tomllib

    model = tomllib.loads((repo / "workers/sdxl/model.toml").read_text())
    assert model["id"] == "stabilityai/stable-diffusion-xl-base-1.0" and model["variant"] == "fp16"
    for entry in (model, model["vae"], model["refiner"]):
        assert len(entry["revision"]) == 40 and int(entry["revision"], 16) >= 0  # a commit, not a branch
    assert (model["vae"]["env"], model["refiner"]["env"]) == ("VAE_PATH", "REFINER_PATH")


def test_a_cancelled_job_stops_at_its_next_step_and_frees_the_gpu(check, worker, progress_log, run_job):
    import asyncio

    from shared.guard import guard

    steps = 100

    async def cancel_after_first_step():
        job = {"id": "cancel-me", "input": {"prompt": "x", **check.SMALL, "num_inference_steps": steps}}
        task = asyncio.create_task(guard(worker.handler)(job))
        while not progress_log.of("cancel-me"):
            await asyncio.sleep(0.005)
        task.cancel()  # what the SDK does on a job-stop
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_after_first_step())  # returns once the job's thread has ended
    assert len(progress_log.of("cancel-me")) < steps
    assert worker.pipelines._lock.acquire(blocking=False)
    worker.pipelines._lock.release()
    assert check.decode(run_job({"prompt": "x", **check.SMALL})["images"][0]).size == (64, 64)


def test_a_jobs_s3_config_receives_its_files_over_the_endpoints_bucket(check, run_job, worker, monkeypatch,
                                                                       s3_bucket):
    endpoint, name, client = s3_bucket
    monkeypatch.setattr(worker, "response_limit", 2000)
    monkeypatch.setattr(worker, "bucket", Bucket(endpoint, "test", "test", name="the-endpoints-bucket"))
    s3_config = {"accessId": "test", "accessSecret": "test", "bucketName": name, "endpointUrl": endpoint}
    result = run_job({"prompt": "x", **check.SMALL, "format": "png"}, job_id="own-bucket", s3Config=s3_config)

    assert result["delivery"] == "url" and result["images"][0]["url"].startswith(f"{endpoint}/{name}/")
    assert [obj["Key"] for obj in client.list_objects_v2(Bucket=name)["Contents"]] == ["own-bucket/0.png"]


def test_a_bad_s3_config_is_bad_input_naming_its_fields(check, run_job):
    error = check.envelope(run_job({"prompt": "x", **check.SMALL}, s3Config={"accessId": "a", "accessSecret": "s"}))
    assert error["code"] == "BAD_INPUT"
    assert {p["field"] for p in error["problems"]} == {"s3Config.bucketName", "s3Config.endpointUrl"}


@pytest.mark.parametrize(
    ("steps", "strength"),
    [(1, None), (1, 0.99), (3, 0.3), (100, 0.009)],
    ids=["one-step-default-strength", "one-step", "three-steps", "tiny-strength"],
)
def test_img2img_that_would_run_zero_steps_is_bad_input_naming_both_fields(check, run_job, steps, strength):
    """Issue 19: steps x strength rounding down to 0 denoising steps failed INTERNAL inside diffusers."""
    job_input = {"prompt": "x", "image": check.png_b64(64, 64), "num_inference_steps": steps}
    if strength is not None:
        job_input["strength"] = strength
    error = check.envelope(run_job(job_input))
    assert error["code"] == "BAD_INPUT"
    assert set(fields(error)) == {"num_inference_steps", "strength"}
    assert "0 denoising steps" in fields(error)["strength"]


def test_img2img_with_exactly_one_denoising_step_gives_an_image(check, run_job):
    result = run_job({"prompt": "x", "image": check.png_b64(64, 64), "num_inference_steps": 2, "strength": 0.5})
    assert check.decode(result["images"][0]).size == (64, 64)


@pytest.mark.parametrize("value", ["true", 1, "yes"])
@pytest.mark.parametrize("field", ["data_uri", "refine"])
def test_a_boolean_field_accepts_booleans_only(check, run_job, field, value):
    error = check.envelope(run_job({"prompt": "x", **check.SMALL, field: value}))
    assert error["code"] == "BAD_INPUT"
    assert field in fields(error)
