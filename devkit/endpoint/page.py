"""The browser side of the local endpoint: `/` (try each worker), `/docs` (schemas and an example per route),
`/schemas` (what both read) and their static files, all served from this package (no CDN, no build step)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from devkit import manifest
from devkit.endpoint_config import WORKERS_DIR
from shared.validation import json_schema

#: HTML, CSS and JS modules of the page, shipped as package data.
PAGE_DIR = Path(__file__).resolve().parent / "page"
#: Where the static files are mounted.
ASSETS_PATH = "/page"

router = APIRouter(include_in_schema=False)


@functools.cache
def input_schema(worker: str) -> dict[str, Any] | None:
    """The JSON Schema of ``worker``'s job input (an endpoint id: a worker, or one of its worker.toml variants),
    from its typed input model; None for a worker without one (test fixtures). The one place the page learns a
    schema: repoint it here if devkit.docs moves."""
    from devkit import docs  # imports the worker's input module: only when a schema is asked for

    if worker not in manifest.endpoint_ids():
        return None
    declared, variant = manifest.endpoint_of(worker)
    return json_schema(docs.input_model(declared.name, variant))


def example_input(worker: str) -> dict[str, Any] | None:
    """What the form starts with: a variant's ``example``, else the ``input`` of
    ``workers/<worker>/test_input.json``, if there is one."""
    if worker in manifest.endpoint_ids():
        declared, variant = manifest.endpoint_of(worker)
        if variant is not None:
            return declared.variants[variant].example
    path = WORKERS_DIR / worker / "test_input.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text()).get("input")


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(PAGE_DIR / "index.html")


@router.get("/docs")
async def docs_page() -> FileResponse:
    return FileResponse(PAGE_DIR / "docs.html")


@router.get("/schemas")
async def schemas(request: Request) -> JSONResponse:
    """Each served worker's input schema and example input. Not behind the API key: it is the same for
    every endpoint built from this repo and holds nothing of the caller's."""
    return JSONResponse({name: {"schema": input_schema(name), "example": example_input(name)}
                         for name in request.app.state.pools})


def component_schemas(worker: str, schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``schema`` as OpenAPI components: ``<worker>.input``, and each of its ``$defs`` as ``<worker>.<Def>``
    with the references to them rewritten (a component's ``#/$defs/...`` would point at the document root)."""
    text = json.dumps(schema).replace('"#/$defs/', f'"#/components/schemas/{worker}.')
    moved = json.loads(text)
    defs = moved.pop("$defs", {})
    return {f"{worker}.input": moved, **{f"{worker}.{name}": body for name, body in defs.items()}}


def with_worker_inputs(app: FastAPI) -> None:
    """Make the app's /openapi.json list each served worker's input schema under components.schemas: the
    routes read raw bodies (RunPod's ``{"input": ...}``, any worker), so FastAPI alone shows none."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()  # FastAPI caches it; adding the same components again changes nothing
        components = document.setdefault("components", {}).setdefault("schemas", {})
        for name in app.state.pools:
            if (schema := input_schema(name)) is not None:
                components.update(component_schemas(name, schema))
        return document

    app.openapi = openapi


def static_files() -> StaticFiles:
    return StaticFiles(directory=PAGE_DIR)
