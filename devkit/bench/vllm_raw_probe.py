"""Child process of the llm-vllm benchmark: the raw engine, no worker around it.

``python -m devkit.bench.vllm_raw_probe '<request json>'`` starts ``AsyncLLM`` from the worker's own engine
settings (worker_llm_vllm.settings: the same model, options and env), says ``ready``, then streams the request once
per line read on stdin and answers each with the number of tokens it streamed, until stdin closes. Its
answers are the stdout lines after ``ANSWER``. The parent times the rounds, in turn with the worker's, so
both see the same load.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

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


async def main(request: dict) -> None:
    from vllm.v1.engine.async_llm import AsyncLLM

    from worker_llm_vllm import settings

    engine = AsyncLLM.from_engine_args(settings.load(Path(os.environ["MODEL_PATH"])).engine_args())
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
