"""The llm-hf worker: loads the model once in setup(), serves each job as a stream of chunks.

torch and transformers are imported in setup(), not here: importing the worker is light (shared.serving,
"nothing heavy happens at import"), so a bad input or a failed start costs no framework import first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from shared.errors import BadInput, StartupError
from shared.llm.inputs import Sampling
from shared.llm.outputs import render
from shared.llm.requests import GenerationRequest
from worker_llm_hf.loading import LoadedModel, load, model_path
from worker_llm_hf.openai import ModelsRequest, model_list, shape_for
from worker_llm_hf.prompting import PromptBuilder
from worker_llm_hf.requests import parse_job

if TYPE_CHECKING:
    from worker_llm_hf.batching import BatchEngine


class LlmHf:
    """Every job of the process shares one model and one batching engine."""

    #: Concurrent jobs are batched into the same forward passes: more jobs, more tokens per second,
    #: until the GPU is compute-bound. MAX_CONCURRENCY overrides it.
    max_concurrency = 8

    #: Read into the page cache while setup() imports (shared.prefetch).
    weight_folders = ("MODEL_PATH",)

    def setup(self) -> None:
        from worker_llm_hf.batching import BatchEngine
        from worker_llm_hf.kv_cache import UnsupportedCache

        path = model_path()
        self.loaded: LoadedModel = load(path)
        self.prompts = PromptBuilder(self.loaded.tokenizer, self.loaded.context)
        self.engine: BatchEngine = BatchEngine(self.loaded.model, self.loaded.tokenizer, self.loaded.eos_ids).start()
        # One tiny generation before the first job: a model the batcher cannot serve (e.g. a sliding-window
        # cache) fails startup with the reason, and the first job does not pay the kernels' warm-up.
        try:
            asyncio.run(self._warm_up())
        except UnsupportedCache as exc:
            self.close()
            raise StartupError(f"the model at MODEL_PATH={path} cannot be served by llm-hf: {exc}",
                               "serve it with the llm-vllm worker, or bake a model with full attention only") from exc

    async def _warm_up(self) -> None:
        warm_up = Sampling(temperature=0, ignore_eos=True)
        prompt = [self.loaded.tokenizer.bos_token_id or 0]
        async for _ in self.engine.generate(prompt, warm_up, max_tokens=2):
            pass

    def close(self) -> None:
        """Stop the engine thread, if setup() got that far (tests; the production process just exits)."""
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.close()

    async def handler(self, job: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        served = self.loaded.served_name
        request = parse_job(job.get("input"), served)
        if isinstance(request, GenerationRequest) and request.structured_outputs is not None:
            raise BadInput.field("structured_outputs", "is not supported by llm-hf (the transformers engine); "
                                 "serve the model with llm-vllm for it")
        if isinstance(request, ModelsRequest):
            yield model_list(served)
            return
        prompt = await asyncio.to_thread(self.prompts.build, request)
        events = self.engine.generate(prompt.ids, request.sampling, prompt.max_tokens)
        async for chunk in render(request, events, shape_for(request, served)):
            yield chunk
