"""shared.payload: the response limit, result measurement, and the inline / bucket / OUTPUT_TOO_LARGE paths."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from shared import payload
from shared.errors import BadInput, OutputTooLarge, StartupError, UploadFailed
from shared.payload import Bucket, FileRef, OutputFile, deliver, response_limit, response_size

FILES = [OutputFile("0.bin", b"\x00" * 3000, "application/octet-stream"), OutputFile("1.bin", b"\x01" * 10, "text/x")]


def render(refs: list[FileRef]) -> dict:
    return {"files": [{"data": r.base64} if r.base64 is not None else {"url": r.url} for r in refs], "n": len(refs)}


@pytest.fixture
def no_bucket_env(monkeypatch):
    for key in (*payload.BUCKET_ENV, payload.BUCKET_NAME_ENV, payload.LIMIT_ENV):
        monkeypatch.delenv(key, raising=False)


def test_limit_defaults_to_the_run_limit_safe_for_both_routes(no_bucket_env):
    assert response_limit() == payload.RUN_LIMIT_BYTES == 10_000_000


def test_limit_comes_from_max_response_bytes(monkeypatch):
    monkeypatch.setenv("MAX_RESPONSE_BYTES", "20000000")
    assert response_limit() == payload.RUNSYNC_LIMIT_BYTES


@pytest.mark.parametrize("raw", ["ten", "0", "-5", "20000001", "1.5"])
def test_limit_refuses_values_runpod_would_not_honour(monkeypatch, raw):
    monkeypatch.setenv("MAX_RESPONSE_BYTES", raw)
    with pytest.raises(StartupError, match="MAX_RESPONSE_BYTES"):
        response_limit()


def test_size_is_the_body_the_sdk_posts():
    output = {"text": "héllo", "n": [1, 2]}
    # rp_http.send_result: json.dumps(job_data, ensure_ascii=False) with job_data = {"output": ...}
    assert response_size(output) == len(json.dumps({"output": output}, ensure_ascii=False).encode())
    assert response_size({"text": "é"}) == len('{"output": {"text": "é"}}'.encode())


def test_result_under_the_limit_is_inlined_as_base64():
    result = deliver("job-1", FILES, render, limit=10_000)
    assert base64.b64decode(result["files"][0]["data"]) == FILES[0].data
    assert base64.b64decode(result["files"][1]["data"]) == FILES[1].data


def test_inline_files_become_data_uris_when_asked():
    result = deliver("job-1", FILES, render, data_uri=True, limit=10_000)
    assert result["files"][1]["data"] == "data:text/x;base64," + base64.b64encode(FILES[1].data).decode()


def test_result_exactly_at_the_limit_is_inlined():
    size = response_size(render([FileRef(base64=base64.b64encode(f.data).decode()) for f in FILES]))
    assert deliver("job-1", FILES, render, limit=size)["n"] == 2
    with pytest.raises(OutputTooLarge):
        deliver("job-1", FILES, render, limit=size - 1)


def test_over_the_limit_without_a_bucket_names_every_knob():
    with pytest.raises(OutputTooLarge) as caught:
        deliver("job-1", FILES, render, limit=1000, bucket=None)
    error = caught.value
    assert error.code == "OUTPUT_TOO_LARGE" and not error.retryable
    for knob in ("MAX_RESPONSE_BYTES", "BUCKET_ENDPOINT_URL", "BUCKET_ACCESS_KEY_ID", "BUCKET_SECRET_ACCESS_KEY",
                 "/runsync", "1000"):
        assert knob in error.message


def test_bucket_from_env_needs_all_three_credentials(monkeypatch, no_bucket_env):
    monkeypatch.setenv("BUCKET_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("BUCKET_ACCESS_KEY_ID", "id")
    assert Bucket.from_env() is None
    monkeypatch.setenv("BUCKET_SECRET_ACCESS_KEY", "secret")
    assert Bucket.from_env() == Bucket("http://127.0.0.1:9", "id", "secret", name=None)
    monkeypatch.setenv("BUCKET_NAME", "outputs")
    assert Bucket.from_env().name == "outputs"


def test_bucket_credentials_stay_out_of_its_repr():
    text = repr(Bucket("http://127.0.0.1:9", "key-id-value", "secret-value", name="outputs"))
    assert "key-id-value" not in text and "secret-value" not in text and "outputs" in text


def test_over_the_limit_with_a_bucket_uploads_every_file_and_returns_urls(s3_bucket):
    endpoint, name, client = s3_bucket
    bucket = Bucket(endpoint, "test", "test", name=name)
    result = deliver("job-7", FILES, render, limit=1000, bucket=bucket)

    urls = [entry["url"] for entry in result["files"]]
    assert all(url.startswith(endpoint) for url in urls)
    keys = sorted(obj["Key"] for obj in client.list_objects_v2(Bucket=name)["Contents"])
    assert keys == ["job-7/0.bin", "job-7/1.bin"]
    # The presigned URLs serve the files' bytes.
    assert [httpx.get(url).content for url in urls] == [f.data for f in FILES]
    assert response_size(result) <= 1000


def test_a_failed_upload_is_a_typed_retryable_error_naming_the_bucket(s3_server):
    bucket = Bucket(s3_server, "test", "test", name="no-such-bucket")
    with pytest.raises(UploadFailed) as caught:
        deliver("job-1", FILES, render, limit=1000, bucket=bucket)
    error = caught.value
    assert (error.code, error.retryable, error.http_status) == ("UPLOAD_FAILED", True, 502)
    assert s3_server in error.message and "BUCKET_" in error.message and "test" not in error.message


def s3_config(endpoint: str, name: str, **extra: str) -> dict:
    return {"accessId": "test", "accessSecret": "test", "bucketName": name, "endpointUrl": endpoint, **extra}


def test_a_job_without_s3_config_has_no_bucket_of_its_own():
    assert Bucket.from_job({"id": "j", "input": {}}) is None
    assert Bucket.from_job({"id": "j", "input": {}, "s3Config": None}) is None


def test_a_jobs_s3_config_is_its_bucket(s3_bucket):
    endpoint, name, client = s3_bucket
    bucket = Bucket.from_job({"id": "job-8", "input": {}, "s3Config": s3_config(endpoint, name)})
    assert bucket == Bucket(endpoint, "test", "test", name=name)
    deliver("job-8", FILES, render, limit=1000, bucket=bucket)
    keys = sorted(obj["Key"] for obj in client.list_objects_v2(Bucket=name)["Contents"])
    assert keys == ["job-8/0.bin", "job-8/1.bin"]


def test_an_s3_config_object_path_is_the_key_prefix(s3_bucket):
    endpoint, name, client = s3_bucket
    bucket = Bucket.from_job({"id": "job-9", "s3Config": s3_config(endpoint, name, objectPath="/renders/today/")})
    deliver("job-9", FILES, render, limit=1000, bucket=bucket)
    keys = sorted(obj["Key"] for obj in client.list_objects_v2(Bucket=name)["Contents"])
    assert keys == ["renders/today/0.bin", "renders/today/1.bin"]


def test_a_bad_s3_config_names_each_field_and_never_echoes_a_credential():
    config = {"accessId": "", "accessSecret": "very-secret", "endpointUrl": "s3://x"}
    with pytest.raises(BadInput) as caught:
        Bucket.from_job({"id": "j", "s3Config": config})
    fields = sorted(problem.field for problem in caught.value.problems)
    assert fields == ["s3Config.accessId", "s3Config.bucketName", "s3Config.endpointUrl"]
    assert "very-secret" not in caught.value.to_job_error() and "s3://x" not in caught.value.to_job_error()
    with pytest.raises(BadInput, match="s3Config"):
        Bucket.from_job({"id": "j", "s3Config": ["not", "an", "object"]})
