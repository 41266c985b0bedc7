"""A stand-in of RunPod's REST API v2 (the operations deploy uses) on 127.0.0.1: for the tests and demos.

Every request is checked as v2 checks it: the path and method against the routes of v2's OpenAPI
document (unknown path 404, wrong method 405, both as problem+json), the bearer key (401), and the
body against the typed copy of v2's schemas in devkit.deploy.api_models, which refuse unknown
fields: a refused body is a 422 whose ``errors`` name each field the way v2 does
("$: additional properties 'bogus' not allowed"). Answers are v2's shapes (Endpoint with requestUrls,
list responses wrapped in an object, 201 on create, 204 on delete). Container changes bump the
endpoint's version, so its workers show as stale until they cycle (v2 releases).

Tests script failures (``fail_next``), place workers (``add_worker``) and read every request
(``requests``). By hand: ``python -m devkit.deploy.standin --port 8765``, then
``RUNPOD_REST_URL=http://127.0.0.1:8765/v2 RUNPOD_API_KEY=<the printed key> make deploy``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from devkit.deploy.api_models import (
    CreateEndpointRequest,
    Endpoint,
    GpuType,
    ListEndpointWorkersResponse,
    UpdateEndpointRequest,
)

API_KEY = "rp_standin_key_0123456789abcdef"
#: Container settings: a change to one of these is a new release (v2 updateEndpoint).
_CONTAINER_FIELDS = ("image", "args", "disk", "ports", "env", "registry")

#: A slice of v2's GPU catalog (GET /v2/catalog/gpus): type ids and memory as RunPod's docs list them
#: ("GPU types"), pools as their "GPU pools" table groups them (docs.runpod.io/references/gpu-types); the
#: RTX 3080 stands for a type the catalog lists without a serverless pool.
CATALOG: tuple[GpuType, ...] = tuple(GpuType.model_validate(g) for g in (
    {"id": "NVIDIA RTX A4000", "name": "RTX A4000", "pool": "AMPERE_16", "manufacturer": "NVIDIA", "memory": 16},
    {"id": "NVIDIA RTX A4500", "name": "RTX A4500", "pool": "AMPERE_16", "manufacturer": "NVIDIA", "memory": 20},
    {"id": "NVIDIA RTX 4000 Ada Generation", "name": "RTX 4000 Ada", "pool": "AMPERE_16", "manufacturer": "NVIDIA",
     "memory": 20},
    {"id": "NVIDIA RTX A5000", "name": "RTX A5000", "pool": "AMPERE_24", "manufacturer": "NVIDIA", "memory": 24},
    {"id": "NVIDIA L4", "name": "L4", "pool": "AMPERE_24", "manufacturer": "NVIDIA", "memory": 24},
    {"id": "NVIDIA GeForce RTX 3090", "name": "RTX 3090", "pool": "AMPERE_24", "manufacturer": "NVIDIA", "memory": 24},
    {"id": "NVIDIA GeForce RTX 4090", "name": "RTX 4090", "pool": "ADA_24", "manufacturer": "NVIDIA", "memory": 24},
    {"id": "NVIDIA RTX A6000", "name": "RTX A6000", "pool": "AMPERE_48", "manufacturer": "NVIDIA", "memory": 48},
    {"id": "NVIDIA A40", "name": "A40", "pool": "AMPERE_48", "manufacturer": "NVIDIA", "memory": 48},
    {"id": "NVIDIA L40S", "name": "L40S", "pool": "ADA_48_PRO", "manufacturer": "NVIDIA", "memory": 48},
    {"id": "NVIDIA A100 80GB PCIe", "name": "A100 PCIe", "pool": "AMPERE_80", "manufacturer": "NVIDIA", "memory": 80},
    {"id": "NVIDIA H100 80GB HBM3", "name": "H100 SXM", "pool": "ADA_80_PRO", "manufacturer": "NVIDIA", "memory": 80},
    {"id": "NVIDIA GeForce RTX 3080", "name": "RTX 3080", "pool": None, "manufacturer": "NVIDIA", "memory": 10},
))


@dataclass
class Recorded:
    method: str
    path: str
    body: Any


@dataclass
class RunPodV2:
    """The stand-in's account: endpoints by id (v2 response shape), their workers, and the request log."""

    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    workers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    #: (method or None for any, status, detail): answered, in order, to the next matching requests.
    failures: list[tuple[str | None, int, str]] = field(default_factory=list)
    catalog: tuple[GpuType, ...] = CATALOG
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        self.endpoints.clear()
        self.workers.clear()
        self.requests.clear()
        self.failures.clear()

    def fail_next(self, status: int, detail: str = "injected", times: int = 1, method: str | None = None) -> None:
        self.failures.extend([(method, status, detail)] * times)

    def take_failure(self, method: str) -> tuple[int, str] | None:
        for i, (wanted, status, detail) in enumerate(self.failures):
            if wanted in (None, method):
                del self.failures[i]
                return status, detail
        return None

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method != "GET"]

    def add_worker(self, endpoint_id: str, status: str, gpu_type: str = "NVIDIA GeForce RTX 4090",
                   stale: bool = False) -> str:
        endpoint = self.endpoints[endpoint_id]
        worker_id = f"wk{next(self.ids):06d}"
        self.workers.setdefault(endpoint_id, []).append({
            "id": worker_id, "status": status, "gpuCount": endpoint["gpu"]["count"], "gpuTypeId": gpu_type,
            "image": endpoint["image"], "version": endpoint["_version"] - (1 if stale else 0),
            "dataCenterId": "US-KS-2", "uptimeSeconds": 60, "startedAt": _now(),
        })
        return worker_id


def problem(status: int, detail: str, errors: list[str] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    titles = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
              422: "Unprocessable Entity", 429: "Too Many Requests"}
    body: dict[str, Any] = {"title": titles.get(status, "Internal Server Error" if status >= 500 else "Error"),
                            "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def _schema_errors(exc: ValidationError) -> list[str]:
    """Pydantic's errors in v2's wording: ``$: additional properties 'x' not allowed``, ``$.a.b: reason``."""
    out = []
    for e in exc.errors():
        loc = [str(p) for p in e["loc"] if not str(p).endswith("Scaling") and p not in ("QUEUE_DELAY", "REQUEST_COUNT")]
        if e["type"] == "extra_forbidden":
            out.append(f"${''.join('.' + p for p in loc[:-1])}: additional properties '{loc[-1]}' not allowed")
        else:
            out.append(f"${''.join('.' + p for p in loc)}: {e['msg']}")
    return out


def _parse(model: type[BaseModel], raw: bytes) -> BaseModel | JSONResponse:
    try:
        body = json.loads(raw)
    except ValueError:
        return problem(400, "request body is not JSON")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        return problem(422, "Request validation failed.", _schema_errors(exc))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _request_urls(endpoint_id: str) -> dict[str, str]:
    base = f"https://api.runpod.ai/v2/{endpoint_id}"
    return {"run": f"{base}/run", "runSync": f"{base}/runsync", "status": f"{base}/status/{{job_id}}",
            "stream": f"{base}/stream/{{job_id}}", "cancel": f"{base}/cancel/{{job_id}}",
            "retry": f"{base}/retry/{{job_id}}", "purgeQueue": f"{base}/purge-queue", "health": f"{base}/health"}


def _shown(endpoint: dict[str, Any]) -> dict[str, Any]:
    shown = {k: v for k, v in endpoint.items() if not k.startswith("_")}
    if shown["scaling"]["type"] == "REQUEST_COUNT":  # v2 omits idleTimeout for that combination
        shown["workers"] = {k: v for k, v in shown["workers"].items() if k != "idleTimeout"}
    Endpoint.model_validate(shown)  # the stand-in answers only what v2's Endpoint schema allows
    return shown


#: v2's routes this stand-in serves, with their methods (OpenAPI paths /v2/serverless, /v2/serverless/{id},
#: /v2/serverless/{id}/workers, /v2/catalog/gpus).
_ROUTES = {"/v2/serverless": {"GET", "POST"}, "/v2/serverless/{id}": {"GET", "PATCH", "DELETE"},
           "/v2/serverless/{id}/workers": {"GET"}, "/v2/catalog/gpus": {"GET"}}


def _route(path: str) -> str | None:
    parts = path.rstrip("/").split("/")
    for route in _ROUTES:
        pattern = route.split("/")
        if len(pattern) == len(parts) and all(p == q or p == "{id}" for p, q in zip(pattern, parts, strict=True)):
            return route
    return None


def make_app(state: RunPodV2) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def check_route_auth_and_failures(request: Request, call_next):
        raw = await request.body()
        try:
            recorded = json.loads(raw) if raw else None
        except ValueError:
            recorded = raw.decode(errors="replace")
        state.requests.append(Recorded(request.method, request.url.path, recorded))
        route = _route(request.url.path)
        if route is None:
            return problem(404, f"no route {request.url.path}")
        if request.method not in _ROUTES[route]:
            return problem(405, "The requested method is not allowed for this path.")
        auth = request.headers.get("authorization", "")
        if auth != f"Bearer {API_KEY}":
            # Echo the presented key, as a careless server might: the client must scrub it.
            return problem(401, f"invalid bearer token {auth.removeprefix('Bearer ')}")
        failure = state.take_failure(request.method)
        if failure is not None:
            status, detail = failure
            return problem(status, detail, headers={"Retry-After": "1"} if status == 429 else None)
        return await call_next(request)

    @app.get("/v2/catalog/gpus")
    def list_gpu_types():
        return {"gpus": [g.model_dump(by_alias=True) for g in state.catalog]}

    @app.get("/v2/serverless")
    def list_endpoints():
        return {"endpoints": [_shown(e) for e in state.endpoints.values()]}

    @app.post("/v2/serverless")
    async def create_endpoint(request: Request):
        parsed = _parse(CreateEndpointRequest, await request.body())
        if isinstance(parsed, JSONResponse):
            return parsed
        body = parsed.model_dump(by_alias=True, exclude_unset=True)
        if refused := _unknown_gpu_selection(state, body.get("gpu")):
            return refused
        with state.lock:
            endpoint_id = f"ep{next(state.ids):06d}"
            gpu = {"count": 1, "allowedCudaVersions": [], "minCudaVersion": None} | body["gpu"]
            endpoint = {
                "id": endpoint_id, "name": body["name"], "type": body["type"],
                "requestUrls": _request_urls(endpoint_id), "image": body["image"], "args": body.get("args", ""),
                "disk": body.get("disk", 20), "ports": body.get("ports", []), "env": body.get("env", {}),
                "registry": body.get("registry"), "gpu": gpu,
                "workers": {"min": 0, "max": 3, "idleTimeout": 10} | body.get("workers", {}),
                "scaling": body["scaling"], "dataCenterIds": body.get("dataCenterIds", []),
                "networkVolumes": body.get("networkVolumes", []), "timeout": body.get("timeout", 300000),
                "flashboot": body.get("flashboot", "OFF"), "createdAt": _now(), "_version": 1,
            }
            state.endpoints[endpoint_id] = endpoint
        return JSONResponse(_shown(endpoint), status_code=201)

    @app.get("/v2/serverless/{endpoint_id}")
    def get_endpoint(endpoint_id: str):
        if endpoint_id not in state.endpoints:
            return problem(404, "endpoint not found")
        return _shown(state.endpoints[endpoint_id])

    @app.patch("/v2/serverless/{endpoint_id}")
    async def update_endpoint(endpoint_id: str, request: Request):
        parsed = _parse(UpdateEndpointRequest, await request.body())
        if isinstance(parsed, JSONResponse):
            return parsed
        if endpoint_id not in state.endpoints:
            return problem(404, "endpoint not found")
        body = parsed.model_dump(by_alias=True, exclude_unset=True)
        endpoint = state.endpoints[endpoint_id]
        gpu = body.pop("gpu", None)
        if gpu is not None:
            if refused := _unknown_gpu_selection(state, gpu if "pools" in gpu else None):
                return refused
            merged = dict(endpoint["gpu"])
            if "pools" in gpu:  # pools replace the selection: exclusions not restated are cleared
                merged.pop("excludedTypes", None)
            merged |= gpu
            if merged.get("minCudaVersion") == "":
                merged["minCudaVersion"] = None
            if merged.get("allowedCudaVersions") and merged.get("minCudaVersion"):
                return problem(400, "allowedCudaVersions and minCudaVersion are mutually exclusive")
            endpoint["gpu"] = merged
        if "workers" in body:
            endpoint["workers"] = endpoint["workers"] | body.pop("workers")
        if any(k in body for k in _CONTAINER_FIELDS):
            endpoint["_version"] += 1  # a new release, rolled out as workers cycle
        endpoint |= body
        return _shown(endpoint)

    @app.delete("/v2/serverless/{endpoint_id}")
    def delete_endpoint(endpoint_id: str):
        if state.endpoints.pop(endpoint_id, None) is None:
            return problem(404, "endpoint not found")
        state.workers.pop(endpoint_id, None)
        return Response(status_code=204)

    @app.get("/v2/serverless/{endpoint_id}/workers")
    def list_workers(endpoint_id: str):
        if endpoint_id not in state.endpoints:
            return problem(404, "endpoint not found")
        version = state.endpoints[endpoint_id]["_version"]
        workers = [w | {"isStale": w["version"] != version} for w in state.workers.get(endpoint_id, [])]
        statuses = [w["status"] for w in workers]
        summary = {s.lower(): statuses.count(s) for s in ("RUNNING", "IDLE", "INITIALIZING", "THROTTLED", "UNHEALTHY")}
        body = {"endpointVersion": version, "summary": summary | {"total": len(workers)}, "workers": workers}
        ListEndpointWorkersResponse.model_validate(body)
        return body

    return app


def _unknown_gpu_selection(state: RunPodV2, gpu: dict[str, Any] | None) -> JSONResponse | None:
    """v2's 400s for a selection: a pool that does not exist, an exclusion outside the pools, nothing left."""
    if gpu is None:
        return None
    pools = {g.pool for g in state.catalog if g.pool}
    unknown = [p for p in gpu["pools"] if p not in pools]
    if unknown:
        return problem(400, f"unknown GPU pool(s): {', '.join(unknown)}")
    in_pools = {g.id for g in state.catalog if g.pool in gpu["pools"]}
    excluded = [t.strip() for t in gpu.get("excludedTypes") or []]
    outside = [t for t in excluded if t not in in_pools]
    if outside:
        return problem(400, f"excludedTypes not in the selected pools: {', '.join(outside)}")
    if not in_pools - set(excluded):
        return problem(400, "the GPU selection leaves no GPU type")
    return None


class StandIn:
    """The stand-in served by uvicorn on a thread: ``with StandIn() as s: s.url``."""

    def __init__(self, port: int = 0, state: RunPodV2 | None = None):
        self.state = state or RunPodV2()
        self.server = uvicorn.Server(uvicorn.Config(make_app(self.state), host="127.0.0.1", port=port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = ""

    def __enter__(self) -> StandIn:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the RunPod REST v2 stand-in did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v2"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devkit.deploy.standin", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    with StandIn(args.port) as standin:
        print(f"RunPod REST v2 stand-in: RUNPOD_REST_URL={standin.url} RUNPOD_API_KEY={API_KEY}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            standin.thread.join()


if __name__ == "__main__":
    main()
