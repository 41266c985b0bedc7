"""Child process of the llm-vllm benchmarks: the raw engine, no worker around it.

``python -m devkit.bench.vllm_raw_probe '<request json>'`` starts ``AsyncLLM`` from the worker's own engine
settings (worker_llm_vllm.settings: the same model, options and env), says ``ready``, then streams the request once
per line read on stdin and answers each with the number of tokens it streamed, until stdin closes. Its
answers are the stdout lines after ``ANSWER``. The parent times the rounds, in turn with the worker's, so
both see the same load.

`cold_start` is the cold-start bench's baseline for llm-vllm (worker.toml ``[bench] engine_baseline``):
the same engine from the same settings, in a fresh process, to the first job's request done.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Prefix of this probe's own stdout lines (vLLM logs to stdout too).
ANSWER = "raw-engine:"


async def stream_once(engine, request: dict, request_id: str) -> int:
    from vllm.sampling_params import RequestOutputKind, SamplingParams

    params = SamplingParams(max_tokens=request["max_tokens"], min_tokens=request["min_tokens"],
                            temperature=request["temperature"], output_kind=RequestOutputKind.DELTA)
    tokens = 0
    async for output in engine.generate(request["prompt"], params, request_id=request_id):
        tokens += len(output.outputs[0].token_ids)
    return tokens


def answer(value: object) -> None:
    """One answer line in one write: print() writes its parts one by one, and a line vLLM logs from its
    engine-core thread meanwhile would land inside the answer."""
    sys.stdout.write(f"{ANSWER} {value}\n")
    sys.stdout.flush()


def worker_engine_args() -> Any:
    """The engine arguments the worker starts vLLM with: its env's settings and the adapters it serves."""
    from worker_llm_vllm import adapters, settings

    return settings.load(Path(os.environ["MODEL_PATH"]), adapters=adapters.baked()).engine_args()


def cold_start(job_input: dict, mark: Callable[[str], float]) -> dict[str, float]:
    """Imports, engine start and one request (the first job's prompt and max_tokens) of the raw ``AsyncLLM``,
    each phase opened with ``mark`` (devkit.bench.cold_start_probe's phases)."""
    times = {"imports": mark("imports")}
    from vllm.sampling_params import SamplingParams
    from vllm.v1.engine.async_llm import AsyncLLM

    async def start_and_generate() -> None:
        times["model_load"] = mark("model_load")
        engine = AsyncLLM.from_engine_args(worker_engine_args())
        try:
            times["first_job"] = mark("first_job")
            params = SamplingParams(max_tokens=job_input.get("max_tokens", 16))
            async for _ in engine.generate(job_input["prompt"], params, request_id="cold-start"):
                pass
            times["end"] = mark("end")
        finally:
            engine.shutdown()

    asyncio.run(start_and_generate())
    return times


async def main(request: dict) -> None:
    from vllm.v1.engine.async_llm import AsyncLLM

    engine = AsyncLLM.from_engine_args(worker_engine_args())
    try:
        answer("ready")
        rounds = 0
        while await asyncio.to_thread(sys.stdin.readline):
            rounds += 1
            answer(await stream_once(engine, request, f"round-{rounds}"))
    finally:
        engine.shutdown()


if __name__ == "__main__":  # vLLM may spawn processes that re-import the main module
    asyncio.run(main(json.loads(sys.argv[1])))
