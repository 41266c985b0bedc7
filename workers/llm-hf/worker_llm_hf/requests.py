"""llm-hf's one entry point for every job: native input, an OpenAI route, or worker-vllm's form, parsed into
one typed request."""

from __future__ import annotations

from typing import Any

from shared.errors import BadInput, FieldProblem
from shared.llm.inputs import Sampling
from shared.llm.openai import CHAT_ROUTE
from shared.llm.requests import GenerationRequest, parse_native
from shared.llm.worker_vllm import (
    DEFAULT_COMPLETION_MAX_TOKENS,
    WorkerVllmRequest,
    is_worker_vllm_form,
    parse_worker_vllm,
)
from worker_llm_hf.openai import ModelsRequest, parse_openai


def parse_job(job_input: Any, served_model: str) -> GenerationRequest | ModelsRequest:
    """Parse a job's ``input`` (native, RunPod's ``{"openai_route", "openai_input"}``, or worker-vllm's form);
    BadInput lists every bad field."""
    if isinstance(job_input, dict) and "openai_route" in job_input:
        return parse_openai(job_input, served_model)
    if is_worker_vllm_form(job_input):
        return _transformers_request(parse_worker_vllm(job_input), served_model)
    request = parse_native(job_input)
    if request.lora is not None:
        raise BadInput.field("lora", f"llm-hf serves no LoRA adapters (the transformers engine); known model: "
                             f"{served_model}. Serve adapters with llm-vllm", request.lora)
    return request


#: sampling_params fields the transformers engine (llm-hf) honours; the others only at their default.
_TRANSFORMERS_SAMPLING = ("model", "max_tokens", "min_tokens", "ignore_eos", "temperature", "top_p", "top_k",
                          "repetition_penalty", "stop", "seed", "stream_options")


def _transformers_request(request: WorkerVllmRequest, served_model: str) -> GenerationRequest:
    """worker-vllm's form as llm-hf serves it: what the transformers engine cannot do is refused per field."""
    params = request.sampling_params
    defaults = type(params)()
    refused = [FieldProblem(f"sampling_params.{name}", "is not supported by llm-hf (the transformers engine); "
                            "serve the model with llm-vllm for it", getattr(params, name))
               for name in sorted(params.model_fields_set - set(_TRANSFORMERS_SAMPLING))
               if getattr(params, name) != getattr(defaults, name)]
    if params.model not in (None, served_model):
        refused.append(FieldProblem("sampling_params.model", "llm-hf serves no LoRA adapters (the transformers "
                                    f"engine); known model: {served_model}", params.model))
    if refused:
        raise BadInput(refused)
    chat = request.route == CHAT_ROUTE
    max_tokens = params.max_tokens if params.max_tokens is not None or chat else DEFAULT_COMPLETION_MAX_TOKENS
    sampling = Sampling(max_tokens=max_tokens, min_tokens=params.min_tokens, ignore_eos=params.ignore_eos,
                        temperature=params.temperature, top_p=params.top_p, top_k=max(params.top_k, 0),
                        repetition_penalty=params.repetition_penalty, stop=params.stop, seed=params.seed)
    messages = request.chat()
    return GenerationRequest(
        api="chat" if chat else "completion",
        sampling=sampling,
        prompt=None if chat else request.prompt,
        messages=tuple(messages) if messages is not None else None,
        stream=request.stream,
        include_usage=bool(params.stream_options and params.stream_options.include_usage),
        prompt_field="messages" if request.messages is not None else "prompt",
        max_tokens_field="sampling_params.max_tokens",
        prefix="sampling_params",
        sse=True,
    )
