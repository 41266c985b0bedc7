"""The OpenAI protocol names both LLM workers use: the routes RunPod forwards, and the shapes the native API
and worker-vllm's form share with OpenAI (finish reasons, usage, stream options).

The request and response models of the OpenAI routes are each worker's own: llm-hf's are in
``worker_llm_hf.openai``; llm-vllm serves its routes with vLLM's own serving classes and request models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, StrictBool

from shared.validation import WorkerInput

CHAT_ROUTE = "/v1/chat/completions"
COMPLETIONS_ROUTE = "/v1/completions"
MODELS_ROUTE = "/v1/models"
ROUTES = (CHAT_ROUTE, COMPLETIONS_ROUTE, MODELS_ROUTE)
#: Served by llm-vllm with an embedding model only (worker_llm_vllm.embeddings); not one of the generation routes.
EMBEDDINGS_ROUTE = "/v1/embeddings"

FinishReason = Literal["stop", "length"]


class StreamOptions(WorkerInput):
    include_usage: StrictBool = Field(False, description="Send one last chunk with the token usage.")


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> Usage:
        return cls(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                   total_tokens=prompt_tokens + completion_tokens)
