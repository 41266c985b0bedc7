"""The jobs the benchmarks send and how their results are read; imports nothing heavy, so the GPU script
(run on a device machine with no fastapi or httpx) shares them with the CPU benchmarks."""

from __future__ import annotations

import inspect
from typing import Any

LLM_PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
IMAGE_PROMPT = "a lighthouse on a cliff at dusk, oil painting"


def llm_request(max_tokens: int, *, stream: bool = False) -> dict[str, Any]:
    """Greedy, and exactly ``max_tokens`` tokens (random weights hit EOS early): the seed does the same work."""
    body: dict[str, Any] = {"prompt": LLM_PROMPT, "max_tokens": max_tokens, "min_tokens": max_tokens,
                            "temperature": 0}
    if stream:
        body["stream"] = True
    return body


def completion_tokens(output: Any) -> int:
    """completion_tokens from a native LLM output (one dict, or the aggregated list of streamed chunks)."""
    chunks = output if isinstance(output, list) else [output]
    for chunk in reversed(chunks):
        if isinstance(chunk, dict) and chunk.get("usage"):
            return int(chunk["usage"]["completion_tokens"])
        if isinstance(chunk, dict) and chunk.get("error"):
            raise RuntimeError(f"the worker failed the job: {str(chunk['error'])[:300]}")
    raise RuntimeError(f"no usage in the worker's output: {str(output)[:300]}")


async def drain(result: Any) -> Any:
    """What a handler call gives, driven to the end as the job loop drives it (chunks listed)."""
    if inspect.isasyncgen(result):
        return [chunk async for chunk in result]
    if inspect.isawaitable(result):
        return await result
    return result
