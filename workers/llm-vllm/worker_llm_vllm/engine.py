"""The vLLM engine of one worker: started once on its own event loop, watched, and reached from the job loop.

vLLM's ``AsyncLLM`` binds its output handler to the event loop that first uses it, and the runpod SDK
runs its job loop with ``asyncio.run`` (a new loop, created after ``setup()``). So the engine and vLLM's
OpenAI serving objects live on one loop of their own, in a daemon thread started here; jobs reach it
through `EngineHost.call` and `EngineHost.stream`, which carry cancellation across: a cancelled job
cancels its coroutine on the engine loop, and vLLM's ``generate()`` aborts the request when cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from worker_llm_vllm.settings import EngineSettings, check

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds between two checks that the engine core is alive.
WATCH_INTERVAL_S = 1.0

#: What to change when the engine cannot fit the model, its KV cache or its batch in memory.
MEMORY_HINT = (
    "if it ran out of memory: lower MAX_MODEL_LEN (the KV cache must hold at least one full-length sequence) "
    "or MAX_NUM_SEQS, raise GPU_MEMORY_UTILIZATION (default 0.9) or set KV_CACHE_MEMORY_BYTES, use a "
    "QUANTIZATION or a larger TENSOR_PARALLEL_SIZE; on CPU set VLLM_CPU_KVCACHE_SPACE (GiB)"
)


def _log_phase(phase: str, started: float) -> float:
    """One log line saying where a part of the start went (the operator's view of a slow cold start); now."""
    now = time.perf_counter()
    log.info("start phase: %s %.2f s", phase, now - started)
    return now


class EngineStartError(RuntimeError):
    """The engine did not start; the message says why and what to change."""


class EngineDead(RuntimeError):
    """The engine core stopped while the worker was serving."""


_END = object()


class EngineHost:
    """Owns the engine loop thread, the ``AsyncLLM`` and vLLM's OpenAI serving state (``state``)."""

    def __init__(self, settings: EngineSettings, on_death: Callable[[str], None]):
        self.settings = settings
        self._on_death = on_death
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vllm-engine-loop", daemon=True)
        self.engine: Any = None
        self.state: Any = None
        self.dead_reason: str | None = None
        self._watch_task: asyncio.Task | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Validate the settings with vLLM, start the engine and the OpenAI serving layer; block until ready."""
        started = time.perf_counter()
        vllm_config = check(self.settings)  # raises EngineSettingsError naming the env vars
        _log_phase("engine config", started)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start(vllm_config), self._loop).result()
        except BaseException:
            self.stop()
            raise

    async def _start(self, vllm_config: Any) -> None:
        from starlette.datastructures import State
        from vllm.entrypoints.launchers.api_server.app_state import init_app_state
        from vllm.usage.usage_lib import UsageContext
        from vllm.v1.engine.async_llm import AsyncLLM

        args = self.settings.args
        started = time.perf_counter()
        try:
            self.engine = AsyncLLM.from_vllm_config(
                vllm_config,
                usage_context=UsageContext.OPENAI_API_SERVER,
                enable_log_requests=args.enable_log_requests,
                disable_log_stats=args.disable_log_stats,
            )
        except Exception as exc:
            raise EngineStartError(_start_failure(exc)) from exc
        started = _log_phase("engine start (weights, profiling, KV cache, compile, CUDA graphs)", started)
        # vLLM's own OpenAI serving objects, built exactly as `vllm serve` builds them from the same args.
        self.state = State()
        await init_app_state(self.engine, self.state, args, await self.engine.get_supported_tasks())
        _log_phase("OpenAI serving layer", started)
        self._watch_task = asyncio.create_task(self._watch())

    def stop(self) -> None:
        """Shut the engine core down and end the loop thread (idempotent)."""
        if self._loop.is_closed():
            return
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    async def _shutdown(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
        if self.engine is not None:
            self.engine.shutdown()

    # --- health ----------------------------------------------------------------------------------

    @property
    def max_model_len(self) -> int:
        return self.engine.model_config.max_model_len

    def check_alive(self) -> None:
        if self.dead_reason is not None:
            raise EngineDead(self.dead_reason)

    async def _watch(self) -> None:
        # vLLM's own monitor thread marks the client dead when the engine core process exits; in-flight
        # requests then fail with EngineDeadError. This turns that flag into the worker's exit.
        while not self.engine.errored:
            await asyncio.sleep(WATCH_INTERVAL_S)
        self.dead_reason = _death_reason(self.engine)
        log.error("vLLM engine died: %s", self.dead_reason)
        self._on_death(self.dead_reason)

    # --- reaching the engine loop from the job loop ------------------------------------------------

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the engine loop; cancelling the caller cancels it there."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def stream(self, items: AsyncIterator[T]) -> AsyncIterator[T]:
        """Iterate ``items`` (an async generator that must run on the engine loop) from the caller's loop.

        A cancelled caller cancels the pending step there (vLLM aborts the request); a caller that
        stops early closes ``items`` there, which aborts it too.
        """
        try:
            while (item := await self.call(_next_or_end(items))) is not _END:
                yield item
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.call(_close(items)))


async def _next_or_end(items: AsyncIterator[T]) -> Any:
    return await anext(items, _END)


async def _close(items: Any) -> None:
    await items.aclose()


def _start_failure(exc: BaseException) -> str:
    return (
        f"the vLLM engine failed to start ({type(exc).__name__}: {exc}). The EngineCore lines above in this "
        f"log hold the root cause; {MEMORY_HINT}"
    )


def _death_reason(engine: Any) -> str:
    """Which engine process stopped and its exit code, when vLLM's process manager can tell."""
    manager = getattr(getattr(engine.engine_core, "resources", None), "engine_manager", None)
    finished: dict[str, int] = {}
    with contextlib.suppress(Exception):  # internal API: a vLLM upgrade must not hide the death itself
        finished = manager.finished_procs()
    codes = ", ".join(f"{name} exited with code {code}" for name, code in finished.items())
    return f"the vLLM engine core stopped ({codes or 'exit code unknown'}); see its log lines above"
