"""The llm-vllm worker: one vLLM engine per process, many jobs at once (continuous batching), native and
OpenAI-compatible input; text generation, or embeddings when the model is an embedding model (`embeddings`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
import tomllib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import shared.settings
from shared.errors import BadInput, DeviceFailure, NotReady, WorkerError
from shared.llm.outputs import render
from shared.llm.requests import parse_native
from shared.llm.worker_vllm import WorkerVllmRequest, as_sse, is_worker_vllm_form, parse_worker_vllm
from worker_llm_vllm import adapters, compile_cache, embeddings, generation, openai_routes, settings
from worker_llm_vllm.engine import EngineDead, EngineHost
from worker_llm_vllm.engine_errors import OPENAI_INPUT, exception_error

log = logging.getLogger(__name__)

#: Exit status of a worker whose engine died while serving (3 is a startup failure a restart may fix, see
#: shared.serving).
ENGINE_DIED_EXIT = 4
#: Seconds between the engine's death and the exit: the failed in-flight jobs post their errors first
#: (shorter than the 2 s after which shared.guard stops a worker that yielded a device failure).
ENGINE_DIED_GRACE_S = 1.0
#: The one place the model is named (the image build bakes it); its id is the served model name.
MODEL_TOML = Path(__file__).resolve().parents[1] / "model.toml"


def model_id() -> str | None:
    """The model's id in model.toml (next to the package, in the repo and in the image), if it is there."""
    if not MODEL_TOML.is_file():
        return None
    return tomllib.loads(MODEL_TOML.read_text())["id"]


def exit_on_engine_death(reason: str) -> None:
    """Leave the process with a non-zero status once in-flight jobs have reported the failure."""
    print(f"llm-vllm: exiting with status {ENGINE_DIED_EXIT}: {reason}", file=sys.stderr, flush=True)
    threading.Timer(ENGINE_DIED_GRACE_S, os._exit, args=(ENGINE_DIED_EXIT,)).start()


def worker_vllm_field(openai_field: str) -> str:
    """Where a field of the OpenAI body built from worker-vllm's form sits in that form's job input."""
    name = openai_field.removeprefix(OPENAI_INPUT).removeprefix(".")
    if name.split(".")[0] in ("prompt", "messages"):
        return name
    return f"sampling_params.{name}" if name else "sampling_params"


class VllmWorker:
    """`setup()` starts the engine from ``MODEL_PATH`` and the engine env vars; `handler()` serves one job."""

    #: Jobs one worker takes at once; vLLM batches them continuously (MAX_NUM_SEQS caps the running batch,
    #: the rest wait in vLLM's queue). MAX_CONCURRENCY overrides it.
    max_concurrency = 30

    #: Read into the page cache while setup() imports (shared.prefetch).
    weight_folders = ("MODEL_PATH",)

    def __init__(self, on_engine_death: Callable[[str], None] = exit_on_engine_death):
        self._on_engine_death = on_engine_death
        self.host: EngineHost | None = None

    def setup(self) -> None:
        path = shared.settings.folder("MODEL_PATH", holds="config.json")
        compile_cache.place()  # before vLLM is imported: it reads VLLM_CACHE_ROOT
        started = time.perf_counter()
        baked = adapters.baked()
        engine_settings = settings.load(path, served_name=model_id(), adapters=baked)
        log.info("start phase: vLLM imports and settings %.2f s", time.perf_counter() - started)
        log.info("starting vLLM on %s with %s%s", path, engine_settings.given or "vLLM's default settings",
                 f", LoRA adapters {', '.join(baked)}" if baked else "")
        self.host = EngineHost(engine_settings, on_death=self._on_engine_death)
        self.host.start()
        self.served_model = engine_settings.served_model_names[0]

    def close(self) -> None:
        if self.host is not None:
            self.host.stop()

    async def handler(self, job: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        host = self._ready_host()
        request_id = f"{job.get('id', 'job')}-{uuid.uuid4().hex[:8]}"
        job_input = job.get("input")
        if embeddings.is_embedding_request(job_input):
            yield await embeddings.respond(host, job_input, request_id)
            return
        embeddings.refuse_generation(host, job_input)  # an embedding model generates no text
        if isinstance(job_input, dict) and "openai_route" in job_input:
            async for chunk in openai_routes.respond(host, job_input, request_id):
                yield chunk
            return
        if is_worker_vllm_form(job_input):
            async for piece in self._worker_vllm(host, parse_worker_vllm(job_input), request_id):
                yield piece
            return
        request = parse_native(job_input)
        lora = adapters.lora_request(host.state, request.lora, "lora")
        events = host.stream(generation.events(host.engine, request, request_id, lora))
        async for chunk in render(request, events):
            yield chunk

    async def _worker_vllm(self, host: EngineHost, request: WorkerVllmRequest, request_id: str
                           ) -> AsyncIterator[dict[str, Any] | str]:
        """worker-vllm's form as worker-vllm serves it: the OpenAI route it stands for, answered by vLLM's
        serving layer; a stream as SSE text. Field paths in errors are the client's (sampling_params.*)."""
        constraint = request.sampling_params.structured_outputs
        if constraint is not None:
            await asyncio.to_thread(generation.check_structured_outputs, host.engine, constraint,
                                    "sampling_params.structured_outputs")
        job_input = {"openai_route": request.route, "openai_input": request.openai_body(self.served_model)}
        chunks = openai_routes.respond(host, job_input, request_id)
        pieces = as_sse(chunks) if request.stream else chunks
        try:
            async with contextlib.aclosing(pieces):
                async for piece in pieces:
                    yield piece
        except BadInput as exc:
            raise BadInput([replace(p, field=worker_vllm_field(p.field)) for p in exc.problems]) from exc

    def engine_error(self, exc: BaseException) -> WorkerError | None:
        """vLLM's exceptions as typed errors (worker_llm_vllm.engine_errors); shared.guard.guard asks it."""
        return exception_error(self.host, exc) if self.host is not None else None

    def _ready_host(self) -> EngineHost:
        if self.host is None or self.host.engine is None:
            raise NotReady("the vLLM engine is not started")
        try:
            self.host.check_alive()
        except EngineDead as exc:
            raise DeviceFailure(f"the vLLM engine is dead: {exc}") from exc
        return self.host
