"""sdxl generation: formats and sizes, seeds, schedulers, img2img, refiner, progress updates."""

from __future__ import annotations

import numpy as np
import pytest

from worker_sdxl.pipeline import SCHEDULERS


@pytest.mark.parametrize(("fmt", "pil_format"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")])
def test_each_format_decodes_to_the_asked_size(check, run_job, fmt, pil_format):
    result = run_job({"prompt": "a lighthouse", **check.SMALL, "width": 64, "height": 80, "format": fmt, "seed": 1})
    (entry,) = result["images"]
    image = check.decode(entry)
    assert (image.format, image.size) == (pil_format, (64, 80))
    assert (entry["width"], entry["height"], entry["format"], entry["seed"]) == (64, 80, fmt, 1)
    assert (result["width"], result["height"], result["seed"], result["delivery"]) == (64, 80, 1, "inline")
    assert set(result["timings"]) == {"prepare_s", "inference_s", "encode_s", "total_s"}
    assert all(seconds >= 0 for seconds in result["timings"].values())


def test_lossy_quality_changes_the_encoding(check, run_job):
    job = {"prompt": "a lighthouse", **check.SMALL, "format": "jpeg", "seed": 2}
    low = run_job({**job, "quality": 5})["images"][0]["image"]
    high = run_job({**job, "quality": 100})["images"][0]["image"]
    assert len(low) < len(high)


def test_data_uri_when_asked(check, run_job):
    result = run_job({"prompt": "x", **check.SMALL, "format": "webp", "data_uri": True})
    assert result["images"][0]["image"].startswith("data:image/webp;base64,")
    assert check.decode(result["images"][0]).size == (64, 64)


def test_same_seed_and_inputs_give_identical_images(check, run_job):
    job = {"prompt": "a red fox", "negative_prompt": "blur", **check.SMALL, "seed": 1234, "num_images": 2}
    first, second = run_job(job), run_job(job)
    assert [e["image"] for e in first["images"]] == [e["image"] for e in second["images"]]


def test_another_seed_gives_another_image(check, run_job):
    job = {"prompt": "a red fox", **check.SMALL}
    one, two = run_job({**job, "seed": 1}), run_job({**job, "seed": 2})
    assert (check.pixels(one["images"][0]) != check.pixels(two["images"][0])).any()


def test_image_i_of_a_batch_uses_seed_plus_i(check, run_job):
    batch = run_job({"prompt": "a red fox", **check.SMALL, "seed": 40, "num_images": 3})
    assert [e["seed"] for e in batch["images"]] == [40, 41, 42]
    alone = run_job({"prompt": "a red fox", **check.SMALL, "seed": 41})
    # Same starting noise; a batch of 3 may round differently from a batch of 1 by a level or two.
    assert np.abs(check.pixels(batch["images"][1]) - check.pixels(alone["images"][0])).max() <= 2


def test_omitted_seed_is_drawn_returned_and_reproduces_the_image(check, run_job):
    first = run_job({"prompt": "a boat", **check.SMALL})
    seed = first["seed"]
    assert isinstance(seed, int) and 0 <= seed < 2**32
    again = run_job({"prompt": "a boat", **check.SMALL, "seed": seed})
    assert again["images"][0]["image"] == first["images"][0]["image"]


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
def test_every_named_scheduler_generates(check, run_job, scheduler):
    result = run_job({"prompt": "a tree", **check.SMALL, "scheduler": scheduler, "seed": 3})
    assert check.decode(result["images"][0]).size == (64, 64)


def test_schedulers_do_not_leak_between_jobs(check, run_job, worker):
    euler = {"prompt": "a tree", **check.SMALL, "seed": 3}
    before = run_job(euler)["images"][0]["image"]
    run_job({**euler, "scheduler": "dpmpp_2m_karras"})
    assert run_job(euler)["images"][0]["image"] == before
    assert type(worker.pipelines.text2img.scheduler).__name__ == "EulerDiscreteScheduler"


def test_img2img_returns_the_source_size_rounded_to_8(check, run_job):
    result = run_job({"prompt": "a castle", "image": check.png_b64(70, 91), "strength": 0.5, "num_inference_steps": 4,
                      "seed": 9})
    assert check.decode(result["images"][0]).size == (64, 88)


def test_img2img_resizes_the_source_to_an_explicit_size(check, run_job):
    result = run_job({"prompt": "a castle", "image": check.png_b64(64, 64, fmt="JPEG"), "width": 96, "height": 64,
                      "num_inference_steps": 2})
    assert check.decode(result["images"][0]).size == (96, 64)


def test_img2img_depends_on_the_source_and_is_deterministic(check, run_job):
    job = {"prompt": "a castle", "strength": 0.3, "num_inference_steps": 4, "seed": 5}
    red = run_job({**job, "image": check.png_b64(64, 64, (250, 0, 0))})
    blue = run_job({**job, "image": check.png_b64(64, 64, (0, 0, 250))})
    assert (check.pixels(red["images"][0]) != check.pixels(blue["images"][0])).any()
    again = run_job({**job, "image": check.png_b64(64, 64, (250, 0, 0))})
    assert again["images"][0]["image"] == red["images"][0]["image"]


def test_img2img_runs_steps_times_strength_with_progress(check, run_job, progress_log):
    source = check.png_b64(64, 64, fmt="WEBP")
    job = {"prompt": "a castle", "image": source, "strength": 0.5, "num_inference_steps": 6}
    run_job(job, job_id="img2img-progress")
    updates = progress_log.of("img2img-progress")
    assert [(u["stage"], u["step"], u["steps"]) for u in updates] == [("img2img", i, 3) for i in (1, 2, 3)]


def test_progress_update_per_step_reaches_the_sender(check, run_job, progress_log):
    run_job({"prompt": "a fox", **check.SMALL, "num_inference_steps": 4}, job_id="progress-steps")
    assert progress_log.of("progress-steps") == [
        {"stage": "base", "step": step, "steps": 4, "progress": step / 4} for step in (1, 2, 3, 4)
    ]


def test_refiner_finishes_the_last_steps(check, run_job, progress_log):
    result = run_job({"prompt": "a fox", **check.SMALL, "num_inference_steps": 5, "refine": True, "refiner_switch": 0.6,
                      "seed": 8}, job_id="refined")
    assert check.decode(result["images"][0]).size == (64, 64)
    stages = [(u["stage"], u["step"], u["steps"]) for u in progress_log.of("refined")]
    assert stages == [("base", 1, 3), ("base", 2, 3), ("base", 3, 3), ("refiner", 1, 2), ("refiner", 2, 2)]
    plain = run_job({"prompt": "a fox", **check.SMALL, "num_inference_steps": 5, "seed": 8})
    assert plain["images"][0]["image"] != result["images"][0]["image"]


def test_refiner_shares_the_base_vae_and_second_text_encoder(worker):
    base, refiner = worker.pipelines.text2img, worker.pipelines.refiner
    assert refiner.vae is base.vae and refiner.text_encoder_2 is base.text_encoder_2


def test_an_fp16_fix_vae_from_vae_path_replaces_the_base_vae(check, monkeypatch, tmp_path, tiny_sdxl_dir):
    import asyncio

    from devkit.fixtures.sdxl import build_vae
    from shared.guard import guard
    from worker_sdxl.worker import SdxlWorker

    monkeypatch.setenv("MODEL_PATH", str(tiny_sdxl_dir))
    monkeypatch.setenv("VAE_PATH", str(build_vae(tmp_path / "vae")))
    monkeypatch.delenv("REFINER_PATH", raising=False)
    worker = SdxlWorker(send_progress=lambda job, update: None)
    worker.setup()
    assert worker.pipelines.text2img.vae.config.force_upcast is False  # the fix VAE's config, not the base's
    result = asyncio.run(guard(worker.handler)({"id": "vae", "input": {"prompt": "x", **check.SMALL}}))
    assert check.decode(result["images"][0]).size == (64, 64)
