"""`LocalEndpoint`: the HTTP app and its worker pools, served by uvicorn on a background thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Coroutine, Iterable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from devkit.endpoint import client_api, openai_api, page, worker_api
from devkit.endpoint.client_api import ApiError
from devkit.endpoint.jobs import JobQueue
from devkit.endpoint.spec import WorkerSpec
from devkit.endpoint.webhooks import WebhookSender
from devkit.endpoint.workers import STOP_GRACE_S, WorkerPool

#: Seconds the server gets to bind and start its pools.
START_TIMEOUT_S = 30.0


def create_app(specs: Iterable[WorkerSpec], base_url: str, api_key: str | None = None) -> FastAPI:
    """The endpoint's ASGI app; its lifespan starts and stops one worker pool per spec."""
    specs = list(specs)
    pools: dict[str, WorkerPool] = {}
    webhooks = WebhookSender()
    stopped = asyncio.Event()

    async def shutdown() -> None:
        if stopped.is_set():
            return
        stopped.set()
        await asyncio.gather(*(pool.stop() for pool in pools.values()))
        await webhooks.close()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.loop = asyncio.get_running_loop()
        for spec in specs:
            queue = JobQueue(execution_timeout=spec.scaling.execution_timeout, on_finished=webhooks.job_finished)
            pools[spec.name] = WorkerPool(spec, base_url, queue)
            await pools[spec.name].start()
        yield
        await shutdown()

    # FastAPI's own /docs loads Swagger UI from a CDN (fails offline): the page module serves /docs instead.
    app = FastAPI(title="Local RunPod endpoint", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.pools = pools
    app.state.api_key = api_key
    app.state.shutdown = shutdown

    @app.exception_handler(ApiError)
    async def runpod_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(StarletteHTTPException)
    async def routing_error(request: Request, exc: StarletteHTTPException):
        """An unknown operation or a wrong method on RunPod's API answers RunPod's ``{"error": ...}`` body too."""
        path = request.url.path
        if path.startswith("/v2/") and "/openai/" not in path:
            return JSONResponse({"error": f"{request.method} {path}: {exc.detail}"}, status_code=exc.status_code,
                                headers=exc.headers)
        return await http_exception_handler(request, exc)

    # `/` (a page to try each worker) and `/docs` (each worker's input schema, an example per route).
    app.include_router(page.router)
    app.mount(page.ASSETS_PATH, page.static_files(), name="page")
    page.with_worker_inputs(app)
    app.include_router(client_api.router)
    app.include_router(openai_api.router)
    app.include_router(worker_api.router)
    return app


class LocalEndpoint:
    """A local RunPod Serverless endpoint: one endpoint id per worker name, real worker processes.

    ``env`` and ``scaling`` map a worker name to extra environment / scaling knobs over its
    endpoint.toml. A worker is a name under ``workers/`` or a ready `WorkerSpec` (test fixtures).
    """

    def __init__(
        self,
        workers: Iterable[str | WorkerSpec],
        env: dict[str, dict[str, str]] | None = None,
        scaling: dict[str, dict[str, Any]] | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        api_key: str | None = None,
    ) -> None:
        env, scaling = env or {}, scaling or {}
        specs = [w if isinstance(w, WorkerSpec) else WorkerSpec.from_repo(w) for w in workers]
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"a worker is listed twice: {names}")
        if unknown := (set(env) | set(scaling)) - set(names):
            raise ValueError(f"env/scaling given for workers that are not served: {sorted(unknown)}")
        self.specs = [s.with_overrides(env.get(s.name), scaling.get(s.name)) for s in specs]
        self.host, self.port, self.api_key = host, port, api_key
        self.base_url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._app: FastAPI | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> LocalEndpoint:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        shown_host = f"[{self.host}]" if ":" in self.host else self.host
        self.base_url = f"http://{shown_host}:{self.port}"
        self._app = create_app(self.specs, self.base_url, self.api_key)
        config = uvicorn.Config(self._app, lifespan="on", log_level="warning", timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="local-endpoint", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server.should_exit = True
                raise RuntimeError(f"the local endpoint did not start on {self.base_url} (see the log above)")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop every worker (they finish their jobs first, up to a grace period), then the server."""
        if self._server is None:
            return
        if self._thread.is_alive():
            self._call(self._app.state.shutdown(), STOP_GRACE_S + 10)
            self._server.should_exit = True
            self._thread.join(timeout=15)
        self._server = None

    def __enter__(self) -> LocalEndpoint:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- inspection ----------------------------------------------------------------------------

    def wait_ready(self, name: str, timeout: float = 120) -> None:
        """Block until a worker of ``name`` is in its job loop (starting one if none runs).

        Raises workers.StartupFailed with the worker's own reason if it fails to start.
        """
        self._call(self._pool(name).wait_ready(timeout), timeout + 5)

    def worker_pids(self, name: str) -> dict[str, int]:
        """Worker id -> process id of the running workers of ``name`` (status shows ``workerId``)."""

        async def pids() -> dict[str, int]:
            return self._pool(name).pids()

        return self._call(pids(), 5)

    def _pool(self, name: str) -> WorkerPool:
        pool = self._app.state.pools.get(name) if self._app is not None else None
        if pool is None:
            raise KeyError(f"no worker {name!r} in this endpoint (started: {self._server is not None})")
        return pool

    def _call(self, coro: Coroutine, timeout: float) -> Any:
        """Run a coroutine on the server's loop, from any other thread."""
        return asyncio.run_coroutine_threadsafe(coro, self._app.state.loop).result(timeout)
