"""Child process of the llm-vllm benchmark: the raw engine, no worker around it.

``python -m devkit.bench.vllm_raw_probe '<request json>' <rounds>`` starts ``AsyncLLM`` from the worker's
own engine settings (llm_vllm.settings, so the same model, options and env), streams the request
``rounds`` times after a warm-up, and prints one JSON line: the tokens and seconds of each round.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path


async def stream_once(engine, request: dict, request_id: str) -> tuple[int, float]:
    from vllm.sampling_params import RequestOutputKind, SamplingParams

    params = SamplingParams(max_tokens=request["max_tokens"], min_tokens=request["min_tokens"],
                            temperature=request["temperature"], output_kind=RequestOutputKind.DELTA)
    started = time.perf_counter()
    tokens = 0
    async for output in engine.generate(request["prompt"], params, request_id=request_id):
        tokens += len(output.outputs[0].token_ids)
    return tokens, time.perf_counter() - started


async def main(request: dict, rounds: int) -> list[tuple[int, float]]:
    from vllm.v1.engine.async_llm import AsyncLLM

    from llm_vllm import settings

    engine = AsyncLLM.from_engine_args(settings.load(Path(os.environ["MODEL_PATH"])).engine_args())
    try:
        await stream_once(engine, request, "warm-up")
        return [await stream_once(engine, request, f"round-{i}") for i in range(rounds)]
    finally:
        engine.shutdown()


if __name__ == "__main__":  # vLLM may spawn processes that re-import the main module
    measured = asyncio.run(main(json.loads(sys.argv[1]), int(sys.argv[2])))
    print(json.dumps(measured), flush=True)
