"""A stand-in for RunPod's REST API v1 (templates, endpoints) on 127.0.0.1, for deploy's tests.

Request bodies are validated with the models written from RunPod's OpenAPI document
(devkit.deploy.api_models), which forbid unknown fields: a body RunPod's schema would not accept is
refused here with 400 and the validation message, like RunPod's "Invalid input". Tests can script
failures (``fail_next``) and read every request that reached the server (``requests``).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from devkit.deploy.api_models import (
    EndpointCreateInput,
    EndpointUpdateInput,
    TemplateCreateInput,
    TemplateUpdateInput,
)

API_KEY = "rp_test_key_0123456789abcdef"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class FakeRunPod:
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    #: (method or None for any, status, body): answered, in order, to the next matching requests.
    failures: list[tuple[str | None, int, Any]] = field(default_factory=list)
    #: RunPod's documented Endpoint schema has no flashboot; the live API may send it. Both are tested.
    report_flashboot: bool = True
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    url: str = ""
    api_key: str = API_KEY

    def reset(self) -> None:
        self.templates.clear()
        self.endpoints.clear()
        self.requests.clear()
        self.failures.clear()
        self.report_flashboot = True

    def fail_next(self, status: int, body: Any = None, times: int = 1, method: str | None = None) -> None:
        self.failures.extend([(method, status, body)] * times)

    def take_failure(self, method: str) -> tuple[int, Any] | None:
        for i, (wanted, status, body) in enumerate(self.failures):
            if wanted in (None, method):
                del self.failures[i]
                return status, body
        return None

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method != "GET"]

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self.ids):06d}"


def _invalid(exc: ValidationError) -> JSONResponse:
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return JSONResponse({"error": f"invalid input: {problems}"}, status_code=400)


def _parse(model: type[BaseModel], body: Any) -> BaseModel | JSONResponse:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        return _invalid(exc)


def make_app(state: FakeRunPod) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def record_auth_and_failures(request: Request, call_next):
        raw = await request.body()
        state.requests.append(Recorded(request.method, request.url.path, dict(request.query_params),
                                       json.loads(raw) if raw else None))
        failure = state.take_failure(request.method)
        if failure is not None:
            status, body = failure
            return JSONResponse(body if body is not None else {"error": "injected"}, status_code=status)
        auth = request.headers.get("authorization", "")
        if auth != f"Bearer {API_KEY}":
            # Echo the presented key, as a careless server might: the client must scrub it.
            return JSONResponse({"error": f"invalid api key: {auth.removeprefix('Bearer ')}"}, status_code=401)
        return await call_next(request)

    def bound_template_ids() -> set[str]:
        return {e["templateId"] for e in state.endpoints.values()}

    @app.get("/templates")
    def list_templates(includeEndpointBoundTemplates: bool = False) -> list[dict]:
        bound = bound_template_ids()
        return [t for t in state.templates.values() if includeEndpointBoundTemplates or t["id"] not in bound]

    @app.post("/templates")
    async def create_template(request: Request):
        body = await request.json()
        parsed = _parse(TemplateCreateInput, body)
        if isinstance(parsed, JSONResponse):
            return parsed
        if any(t["name"] == body["name"] for t in state.templates.values()):
            return JSONResponse({"error": "template name must be unique"}, status_code=400)
        template = {"id": state.new_id("tpl"), "env": {}, "isServerless": False, "containerDiskInGb": 50,
                    "category": "NVIDIA", "isPublic": False, "isRunpod": False} | body
        state.templates[template["id"]] = template
        return template

    @app.patch("/templates/{template_id}")
    async def update_template(template_id: str, request: Request):
        body = await request.json()
        parsed = _parse(TemplateUpdateInput, body)
        if isinstance(parsed, JSONResponse):
            return parsed
        if template_id not in state.templates:
            return JSONResponse({"error": "template not found"}, status_code=404)
        state.templates[template_id] |= body
        return state.templates[template_id]

    @app.delete("/templates/{template_id}")
    def delete_template(template_id: str):
        state.templates.pop(template_id, None)
        return Response(status_code=204)

    def shown(endpoint: dict[str, Any]) -> dict[str, Any]:
        return endpoint if state.report_flashboot else {k: v for k, v in endpoint.items() if k != "flashboot"}

    @app.get("/endpoints")
    def list_endpoints() -> list[dict]:
        return [shown(e) for e in state.endpoints.values()]

    @app.post("/endpoints")
    async def create_endpoint(request: Request):
        body = await request.json()
        parsed = _parse(EndpointCreateInput, body)
        if isinstance(parsed, JSONResponse):
            return parsed
        if body["templateId"] not in state.templates:
            return JSONResponse({"error": f"template {body['templateId']} not found"}, status_code=400)
        endpoint = {"id": state.new_id("ep"), "computeType": "GPU", "gpuCount": 1, "idleTimeout": 5,
                    "scalerType": "QUEUE_DELAY", "scalerValue": 4, "workersMin": 0, "workersMax": 3,
                    "executionTimeoutMs": 600000, "flashboot": False, "version": 0} | body
        state.endpoints[endpoint["id"]] = endpoint
        return shown(endpoint)

    @app.patch("/endpoints/{endpoint_id}")
    async def update_endpoint(endpoint_id: str, request: Request):
        body = await request.json()
        parsed = _parse(EndpointUpdateInput, body)
        if isinstance(parsed, JSONResponse):
            return parsed
        if endpoint_id not in state.endpoints:
            return JSONResponse({"error": "endpoint not found"}, status_code=404)
        state.endpoints[endpoint_id] |= body | {"version": state.endpoints[endpoint_id]["version"] + 1}
        return shown(state.endpoints[endpoint_id])

    @app.delete("/endpoints/{endpoint_id}")
    def delete_endpoint(endpoint_id: str):
        state.endpoints.pop(endpoint_id, None)
        return Response(status_code=204)

    return app


@pytest.fixture(scope="session")
def _runpod_server():
    state = FakeRunPod()
    server = uvicorn.Server(uvicorn.Config(make_app(state), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the RunPod REST stand-in did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield state, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def runpod(_runpod_server, monkeypatch) -> FakeRunPod:
    """The stand-in, emptied, with RUNPOD_API_KEY / RUNPOD_REST_URL pointing the code at it."""
    state, url = _runpod_server
    state.reset()
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
    monkeypatch.setenv("RUNPOD_REST_URL", url)
    monkeypatch.setenv("REGISTRY", "docker.io/acme")
    monkeypatch.setenv("TAG", "v1")
    state.url = url
    return state


@pytest.fixture
def workers_dir(tmp_path, monkeypatch):
    """Point endpoint_config at a scratch workers/ folder; returns write(name, toml_text)."""
    import devkit.endpoint_config as endpoint_config

    monkeypatch.setattr(endpoint_config, "WORKERS_DIR", tmp_path)

    def write(name: str, text: str) -> None:
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / "endpoint.toml").write_text(text)

    return write
