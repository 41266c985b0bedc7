"""The sdxl worker as a process behind the local endpoint, driven with the official runpod client."""

from __future__ import annotations

import base64
import io
import json
import time

import httpx
import pytest

pytestmark = pytest.mark.e2e

NAME = "sdxl"
BUCKET = "sdxl-e2e"
#: Small enough that a 256x256 PNG goes to the bucket, large enough for a 64x64 one to stay inline.
LIMIT = 60_000
SMALL = {"width": 64, "height": 64, "num_inference_steps": 2}


@pytest.fixture(scope="module")
def sdxl(endpoint_factory, s3_server):
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_server, aws_access_key_id="test", aws_secret_access_key="test",
                      region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    env = {
        "MAX_RESPONSE_BYTES": str(LIMIT),
        "BUCKET_ENDPOINT_URL": s3_server,
        "BUCKET_ACCESS_KEY_ID": "test",
        "BUCKET_SECRET_ACCESS_KEY": "test",
        "BUCKET_NAME": BUCKET,
    }
    return endpoint_factory([NAME], env={NAME: env}, scaling={NAME: {"min_workers": 1, "max_workers": 1}})


@pytest.fixture(scope="module")
def client(sdxl, runpod_endpoint):
    return runpod_endpoint(sdxl, NAME)


def image_of(text: str):
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(text.split(",", 1)[-1], validate=True)))
    image.load()
    return image


def test_runsync_returns_images_in_the_asked_format_and_size(client):
    output = client.run_sync({"prompt": "a lighthouse", **SMALL, "height": 80, "format": "webp", "num_images": 2,
                              "seed": 5}, timeout=120)
    assert [entry["seed"] for entry in output["images"]] == [5, 6]
    for entry in output["images"]:
        image = image_of(entry["image"])
        assert (image.format, image.size) == ("WEBP", (64, 80))
    assert output["delivery"] == "inline" and output["timings"]["total_s"] > 0


def test_the_same_seed_gives_the_same_image_across_jobs(client):
    job = {"prompt": "a red fox", **SMALL, "format": "png", "seed": 77}
    assert client.run_sync(job, timeout=120)["images"] == client.run_sync(job, timeout=120)["images"]


def test_img2img_with_a_data_uri_source(client):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (72, 64), (10, 200, 30)).save(buffer, format="JPEG")
    source = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
    output = client.run_sync({"prompt": "a field", "image": source, "strength": 0.5, "num_inference_steps": 4,
                              "data_uri": True}, timeout=120)
    assert output["images"][0]["image"].startswith("data:image/png;base64,")
    assert image_of(output["images"][0]["image"]).size == (72, 64)


def test_bad_input_fails_with_every_problem_and_the_worker_keeps_serving(client, sdxl, await_status):
    job = client.run({"prompt": "x", "width": 100, "num_images": 0, "format": "gif"})
    body = await_status(sdxl, NAME, job.job_id, "FAILED", "COMPLETED", timeout=120)
    assert body["status"] == "FAILED"
    error = json.loads(body["error"])
    assert error["code"] == "BAD_INPUT"
    assert {p["field"] for p in error["problems"]} == {"width", "num_images", "format"}
    assert client.run_sync({"prompt": "x", **SMALL}, timeout=120)["images"]


def test_progress_shows_in_status_while_the_job_runs(client, sdxl, http):
    # At the default PROGRESS_INTERVAL_S (0.5 s) updates cannot overtake each other (the SDK posts
    # each from its own thread), so /status only moves forward.
    steps = 100
    job = client.run({"prompt": "a tree", "width": 128, "height": 128, "num_inference_steps": steps})
    seen = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        body = http.get(f"{sdxl.base_url}/v2/{NAME}/status/{job.job_id}").json()
        if body["status"] == "IN_PROGRESS" and body.get("output"):
            seen.append(body["output"])
        if body["status"] in {"COMPLETED", "FAILED"}:
            break
        time.sleep(0.02)
    assert body["status"] == "COMPLETED"
    assert seen, "no progress update was visible while the job ran"
    assert all(update["stage"] == "base" and update["steps"] == steps for update in seen)
    assert [u["step"] for u in seen] == sorted(u["step"] for u in seen)
    assert all(0 < update["progress"] <= 1 for update in seen)


def test_a_result_over_the_limit_arrives_as_bucket_urls(client, s3_server):
    output = client.run_sync({"prompt": "noise", "width": 256, "height": 256, "num_inference_steps": 2,
                              "num_images": 2, "format": "png", "seed": 3}, timeout=180)
    assert output["delivery"] == "url"
    for entry in output["images"]:
        assert entry["url"].startswith(f"{s3_server}/{BUCKET}/")
        assert image_of(base64.b64encode(httpx.get(entry["url"]).content).decode()).size == (256, 256)


def test_a_jobs_s3_config_receives_its_files_instead_of_the_endpoints_bucket(client, s3_server):
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_server, aws_access_key_id="test", aws_secret_access_key="test",
                      region_name="us-east-1")
    s3.create_bucket(Bucket="per-job-e2e")
    s3_config = {"accessId": "test", "accessSecret": "test", "bucketName": "per-job-e2e", "endpointUrl": s3_server}
    job = client.run({"input": {"prompt": "noise", "width": 256, "height": 256, "num_inference_steps": 2,
                                "format": "png", "seed": 4}, "s3Config": s3_config})
    output = job.output(timeout=180)
    assert output["delivery"] == "url"
    assert output["images"][0]["url"].startswith(f"{s3_server}/per-job-e2e/{job.job_id}/")
    keys = [obj["Key"] for obj in s3.list_objects_v2(Bucket="per-job-e2e")["Contents"]]
    assert keys == [f"{job.job_id}/0.png"]


def test_a_cancelled_job_is_cancelled_and_the_worker_serves_the_next(client, sdxl, http, await_status):
    job = client.run({"prompt": "slow", "width": 128, "height": 128, "num_inference_steps": 100})
    await_status(sdxl, NAME, job.job_id, "IN_PROGRESS", timeout=120)
    job.cancel()
    assert await_status(sdxl, NAME, job.job_id, "CANCELLED", timeout=30)["status"] == "CANCELLED"
    assert client.run_sync({"prompt": "next", **SMALL}, timeout=120)["images"]
