"""End-to-end fixtures: local endpoints with real worker processes, and official runpod clients for them.

Use them from any e2e test::

    def test_x(endpoint_factory, runpod_endpoint):
        ep = endpoint_factory(["llm-hf"], scaling={"llm-hf": {"min_workers": 1}})
        client = runpod_endpoint(ep, "llm-hf")          # runpod.Endpoint("llm-hf") against ep
        assert client.run_sync({"prompt": "hi"}, timeout=60)

Endpoints are started once per session and shared by every test asking for the same configuration
(workers, env, scaling, api_key); all are stopped at the end of the session.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
import runpod

from devkit.endpoint import LocalEndpoint, WorkerSpec
from devkit.endpoint_config import PROFILES, Scaling

FIXTURE_WORKERS = Path(__file__).resolve().parents[1] / "fixtures" / "workers"


@pytest.fixture(scope="session")
def endpoint_factory() -> Callable[..., LocalEndpoint]:
    """``endpoint_factory(workers, env=None, scaling=None, api_key=None, ready=True, timeout=180)``.

    ``ready`` waits until one worker of each name is in its job loop (set ``min_workers`` in
    ``scaling`` to keep it: the development profile stops idle workers after its 30 s idle timeout).
    """
    started: dict[str, LocalEndpoint] = {}

    def start(
        workers: Iterable[str | WorkerSpec],
        env: dict[str, dict[str, str]] | None = None,
        scaling: dict[str, dict[str, Any]] | None = None,
        api_key: str | None = None,
        ready: bool = True,
        timeout: float = 180,
    ) -> LocalEndpoint:
        workers = list(workers)
        key = repr((workers, env, scaling, api_key))
        if key not in started:
            endpoint = LocalEndpoint(workers=workers, env=env, scaling=scaling, api_key=api_key).start()
            started[key] = endpoint
            if ready:
                for spec in endpoint.specs:
                    endpoint.wait_ready(spec.name, timeout=timeout)
        return started[key]

    yield start
    for endpoint in started.values():
        endpoint.stop()


@pytest.fixture(scope="session")
def runpod_endpoint() -> Callable[..., runpod.Endpoint]:
    """``runpod_endpoint(local_endpoint, name, api_key="local")``: the official client pointed at it."""

    def make(endpoint: LocalEndpoint, name: str, api_key: str | None = None) -> runpod.Endpoint:
        # Both are read when the Endpoint is constructed (runpod.endpoint.runner.RunPodClient).
        runpod.endpoint_url_base = f"{endpoint.base_url}/v2"
        runpod.api_key = api_key or endpoint.api_key or "local"
        return runpod.Endpoint(name)

    return make


@pytest.fixture(scope="session")
def fixture_worker() -> Callable[..., WorkerSpec]:
    """``fixture_worker(module, env=None, **scaling)``: a worker from tests/fixtures/workers/<module>.py."""

    def make(module: str, env: dict[str, str] | None = None, **scaling: Any) -> WorkerSpec:
        base = PROFILES["development"].model_dump() | {"execution_timeout": 60}
        return WorkerSpec(
            name=module.replace("_", "-"),
            module=module,
            pythonpath=(FIXTURE_WORKERS,),
            scaling=Scaling.model_validate(base | scaling),
            env=dict(env or {}),
        )

    return make


@pytest.fixture(scope="session")
def http() -> httpx.Client:
    """A plain HTTP client for what the runpod client hides (error bodies, /health, limits)."""
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def await_status(http) -> Callable[..., dict[str, Any]]:
    """``await_status(endpoint, name, job_id, *statuses, timeout=30)``: poll /status until one of them."""

    def wait(endpoint: LocalEndpoint, name: str, job_id: str, *statuses: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            body = http.get(f"{endpoint.base_url}/v2/{name}/status/{job_id}").json()
            if body["status"] in statuses:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {body['status']} after {timeout} s, wanted {statuses}")
            time.sleep(0.1)

    return wait


#: Debian's chromium (`apt-get install chromium`, as .ci/run does); Playwright never downloads a browser here.
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
#: Flags that keep a headless chromium off the network and quiet on a bare CI machine or in a container.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Where browser tests leave screenshots; CI uploads the folder (.github/workflows/test.yml).
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".artifacts" / "screenshots"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A headless chromium (a Playwright BrowserContext) on a new empty profile; ``browser.new_page()``.

    Module-scoped: Playwright's sync API keeps an event loop running in the main thread while it is open,
    so every later test that calls ``asyncio.run`` would fail if it outlived the browser tests."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise RuntimeError(f"no chromium at {CHROMIUM}: `apt-get install chromium` (or set CHROMIUM=<path>)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS,
            headless=True, viewport={"width": 1280, "height": 900})
        yield context
        context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
