"""Fixtures shared by every test: the runpod SDK test environment, repo paths, tiny models, S3, a webhook."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Every worker's package importable by its name (worker_<name>), as the image's PYTHONPATH=/app makes it:
# each folder of workers/ that declares itself (worker.toml), so a new worker needs no edit here.
sys.path[:0] = [str(toml.parent) for toml in sorted((REPO / "workers").glob("*/worker.toml"))]

# Read by the runpod SDK at import time: skip its fitness probes (a TCP connect to a public DNS
# server, GPU checks) that cannot pass on a machine with no internet and no GPU.
os.environ.setdefault("RUNPOD_SKIP_AUTO_SYSTEM_CHECKS", "true")
os.environ.setdefault("RUNPOD_SKIP_GPU_CHECK", "true")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory) -> Path:
    """A tiny Llama (+ tokenizer with chat template) folder, built once per test session."""
    from devkit.fixtures.llm import build

    return build(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_embedding_dir(tmp_path_factory) -> Path:
    """A tiny embedding model folder (Llama, sentence-transformers layout), built once per test session."""
    from devkit.fixtures.embedding import build

    return build(tmp_path_factory.mktemp("tiny-embedding"))


@pytest.fixture(scope="session")
def tiny_sdxl_dir(tmp_path_factory) -> Path:
    """A tiny SDXL pipeline folder, built once per test session."""
    from devkit.fixtures.sdxl import build

    return build(tmp_path_factory.mktemp("tiny-sdxl"))


@pytest.fixture(scope="session")
def s3_server():
    """A local S3-compatible server (moto) on 127.0.0.1: its endpoint URL, for bucket upload paths."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh, empty bucket on the local S3 server: (endpoint URL, bucket name, boto3 client)."""
    import uuid

    import boto3

    client = boto3.client(
        "s3", endpoint_url=s3_server, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    name = f"bucket-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return s3_server, name, client


class WebhookReceiver(HTTPServer):
    """A local webhook: keeps each POSTed JSON body; answers the statuses queued in ``answers``, then 200."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _WebhookHandler)
        self.bodies: list[dict] = []
        self.answers: list[int] = []
        self.url = f"http://127.0.0.1:{self.server_port}/hook"

    def wait_for(self, count: int, timeout: float = 30) -> list[dict]:
        """The first ``count`` bodies received, waiting up to ``timeout`` s for them."""
        deadline = time.monotonic() + timeout
        while len(self.bodies) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.bodies)} webhook call(s) after {timeout} s, wanted {count}")
            time.sleep(0.05)
        return self.bodies[:count]


class _WebhookHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.server.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(self.server.answers.pop(0) if self.server.answers else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_receiver() -> WebhookReceiver:
    """A fresh local webhook URL (``.url``) and what was POSTed to it (``.bodies``, ``.wait_for(n)``)."""
    server = WebhookReceiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


async def _chunks_with_a_busy_consumer(handler, job_input, engine_busy) -> list:
    """A streamed job's chunks as seen by a consumer that is busy (posting its second chunk, as the SDK's
    job loop does) until ``engine_busy()`` turns false. The second: a chat stream's first chunk (the role)
    comes before the engine has the request."""
    chunks = handler({"id": "job", "input": job_input})
    got = [await anext(chunks), await anext(chunks)]
    while engine_busy():
        await asyncio.sleep(0.01)
    return got + [chunk async for chunk in chunks]


@pytest.fixture(scope="session")
def busy_consumer_chunks():
    """``await busy_consumer_chunks(handler, job_input, engine_busy)``: see `_chunks_with_a_busy_consumer`."""
    return _chunks_with_a_busy_consumer


async def _engine_events(*deltas, finish=None, closed=None):
    """An LLM engine stand-in that produces one delta per step, then ``finish`` (a stop after 3 prompt and
    2 completion tokens unless given; False for none): a consumer that keeps up gets each delta on its own."""
    from shared.llm.outputs import Finish

    try:
        for delta in deltas:
            yield delta
            await asyncio.sleep(0)
        if finish is None:
            finish = Finish("stop", 3, 2)
        if finish:
            yield finish
    finally:
        if closed is not None:
            closed.append(True)


@pytest.fixture(scope="session")
def engine_events():
    """``engine_events(*deltas, finish=..., closed=list)``: what `shared.llm.outputs.render` consumes."""
    return _engine_events


def _drain(chunks, slowly: bool = False) -> list:
    """Every chunk of an async iterator; ``slowly``: as a consumer that is busy (posting) after the first
    chunk until the engine has produced everything."""

    async def collect():
        if not slowly:
            return [chunk async for chunk in chunks]
        got = [await anext(chunks)]
        for _ in range(20):  # let the engine run ahead while the first chunk is being posted
            await asyncio.sleep(0)
        return got + [chunk async for chunk in chunks]

    return asyncio.run(collect())


@pytest.fixture(scope="session")
def drain():
    """``drain(chunks, slowly=False)``: the chunks a rendered response is made of."""
    return _drain
