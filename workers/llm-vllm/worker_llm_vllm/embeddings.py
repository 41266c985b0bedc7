"""Embeddings: OpenAI's ``/v1/embeddings`` and the native embedding request, served by vLLM's pooling path.

A deployment serves embeddings when vLLM runs its model as an embedding model: vLLM decides from the model
folder (an embedding architecture such as ``BertModel``, or a sentence-transformers ``modules.json`` with a
Pooling module, as Qwen3-Embedding and e5-mistral ship), or the endpoint says so with vLLM's own options
``RUNNER=pooling`` and ``CONVERT=embed`` (``vllm serve --runner pooling --convert embed``; worker-vllm reads the
same names). Then vLLM's OpenAI serving layer holds an embedding server (``state.serving_embedding``, the
object behind ``vllm serve``'s ``/v1/embeddings``) and no chat or completion server; a generative model has
the reverse. Each request is checked against what the model is before it reaches vLLM, and refused naming
the route or field when the model cannot answer it (`refuse_generation`, and `respond` on a generative model).

Two request forms, one schema (as RunPod's own embedding worker, runpod-workers/worker-infinity-embedding,
README "Create Embeddings": "OpenAI route vs. Standard", both answered with the same response):

- RunPod's OpenAI route ``/openai/v1/embeddings``: ``{"openai_route": "/v1/embeddings", "openai_input": body}``,
  body = OpenAI's embeddings request; vLLM's extra parameters (``truncate_prompt_tokens``,
  ``add_special_tokens``, ``use_activation``...) pass to vLLM as on ``vllm serve``.
- Native: ``{"input": {"input": "text" | ["text", ...] | [token ids] | [[token ids], ...], "dimensions"?,
  "encoding_format"?, "model"?}}`` (`EmbeddingInput`; a job input with a top-level ``input`` is an
  embedding request).

The answer is OpenAI's embedding list: ``{"object": "list", "data": [{"object": "embedding", "index", "embedding"}],
"model", "usage"}``, as vLLM's server writes it. Limits: `MAX_INPUTS` inputs per request (OpenAI's own limit),
each at most `MAX_INPUT_CHARS` characters or `MAX_INPUT_TOKEN_IDS` token ids, and at most the model's context
(MAX_MODEL_LEN) in tokens, checked by vLLM (BAD_INPUT on ``input`` with the token count); a response over RunPod's
payload limit is OUTPUT_TOO_LARGE (`_within_the_payload_limit`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationError, field_validator

from shared import payload
from shared.errors import BadInput, FieldProblem, OutputTooLarge
from shared.llm.inputs import MAX_PROMPT_CHARS, MAX_TOKENS_LIMIT
from shared.llm.openai import EMBEDDINGS_ROUTE, MODELS_ROUTE
from shared.validation import WorkerInput, loose_boolean_problems, markdown_table, problems_from
from worker_llm_vllm.engine import EngineHost
from worker_llm_vllm.engine_errors import OPENAI_INPUT, exception_error

#: Inputs per request: OpenAI's limit ("any array must be 2048 dimensions or less", API reference,
#: "Create embeddings"). Each is one sequence in vLLM's batch.
MAX_INPUTS = 2048
#: Characters of one text input (as a native prompt); its tokens are checked against the model's context.
MAX_INPUT_CHARS = MAX_PROMPT_CHARS
#: Token ids in one token-id input (the model's context is checked per request, by vLLM).
MAX_INPUT_TOKEN_IDS = MAX_TOKENS_LIMIT
MAX_TOKEN_ID = 2**31 - 1
#: Upper bound of ``dimensions`` before vLLM checks it against the model (its Matryoshka dimensions).
MAX_DIMENSIONS = 65_536
#: OpenAI's encodings: a JSON array of floats, or base64 of little-endian float32 (what the openai client asks).
EncodingFormat = Literal["float", "base64"]

_Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_INPUT_CHARS)]
_TokenId = Annotated[int, Field(ge=0, le=MAX_TOKEN_ID)]
_TokenIds = Annotated[list[_TokenId], Field(min_length=1, max_length=MAX_INPUT_TOKEN_IDS)]
_Texts = Annotated[list[_Text], Field(min_length=1, max_length=MAX_INPUTS)]
_TokenIdLists = Annotated[list[_TokenIds], Field(min_length=1, max_length=MAX_INPUTS)]


class EmbeddingInput(WorkerInput):
    """The embedding request (native ``{"input": {...}}``, and the OpenAI fields of ``/v1/embeddings``): one
    vector per input, in order."""

    input: _Text | _Texts | _TokenIds | _TokenIdLists = Field(
        description=f"What to embed: a text, a list of texts, a list of token ids, or a list of such lists "
        f"(at most {MAX_INPUTS} inputs; each at most {MAX_INPUT_CHARS} characters or {MAX_INPUT_TOKEN_IDS} token "
        "ids, and at most the model's context in tokens).")
    model: str | None = Field(None, max_length=256, description="The served model name; when given it must be "
                              "this endpoint's (`/v1/models`).")
    encoding_format: EncodingFormat = Field("float", description="`float`: a list of numbers; `base64`: the "
                                            "little-endian float32 bytes, base64-encoded (as OpenAI's).")
    dimensions: int | None = Field(None, ge=1, le=MAX_DIMENSIONS, description="Shorter vectors, for a Matryoshka "
                                   "model (its `matryoshka_dimensions`); other models refuse it.")
    user: str | None = Field(None, max_length=256, description="OpenAI's end-user id: accepted, not used.")

    @field_validator("input", mode="before")
    @classmethod
    def _one_of_the_forms(cls, value: Any) -> Any:
        # Checked here, item by item, so a refusal says what is wrong in the client's words (pydantic would list
        # one error per form of the union), and an over-long list is refused before any item is validated.
        if isinstance(value, str):
            return _text(value, "")
        if not isinstance(value, list) or not value:
            raise ValueError(_FORMS if value != [] else "must not be empty")
        if all(_is_token_id(item) for item in value):
            return _token_ids(value, "")
        if len(value) > MAX_INPUTS:
            raise ValueError(f"is {len(value)} inputs; at most {MAX_INPUTS} per request")
        if all(isinstance(item, str) for item in value):
            return [_text(item, f"item {index}: ") for index, item in enumerate(value)]
        if all(isinstance(item, list) for item in value):
            return [_token_ids(item, f"item {index}: ") for index, item in enumerate(value)]
        raise ValueError(_FORMS)


_FORMS = "must be a text, a list of texts, a list of token ids or a list of lists of token ids, not mixed"


def _is_token_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: str, where: str) -> str:
    if not value:
        raise ValueError(f"{where}an empty text has no embedding")
    if len(value) > MAX_INPUT_CHARS:
        raise ValueError(f"{where}is {len(value)} characters; at most {MAX_INPUT_CHARS}")
    return value


def _token_ids(value: list[Any], where: str) -> list[int]:
    if not value:
        raise ValueError(f"{where}an empty list of token ids has no embedding")
    if len(value) > MAX_INPUT_TOKEN_IDS:
        raise ValueError(f"{where}is {len(value)} token ids; at most {MAX_INPUT_TOKEN_IDS}")
    if not all(_is_token_id(token) and 0 <= token <= MAX_TOKEN_ID for token in value):
        raise ValueError(f"{where}token ids are whole numbers from 0 to {MAX_TOKEN_ID}")
    return value


def is_embedding_request(job_input: Any) -> bool:
    """A job for this module: the OpenAI embeddings route, or a native input with a top-level ``input``."""
    if not isinstance(job_input, dict):
        return False
    if "openai_route" in job_input:
        return job_input["openai_route"] == EMBEDDINGS_ROUTE
    return "input" in job_input


def serves_embeddings(host: EngineHost) -> bool:
    return getattr(host.state, "serving_embedding", None) is not None


def serves_generation(host: EngineHost) -> bool:
    return getattr(host.state, "openai_serving_chat", None) is not None


def refuse_generation(host: EngineHost, job_input: Any) -> None:
    """BadInput for a generation request (chat, completions, native or worker-vllm's form) to an embedding
    model, naming the route or field; nothing for any other request (``/v1/models`` is served by both)."""
    if serves_generation(host) or not serves_embeddings(host) or not isinstance(job_input, dict):
        return  # not an object: the native parser says what the input must be
    if "openai_route" in job_input:
        if job_input["openai_route"] == MODELS_ROUTE:
            return
        field, value = "openai_route", job_input["openai_route"]
    else:
        field, value = next((name for name in ("prompt", "messages") if name in job_input), "input"), None
    raise BadInput([FieldProblem(field, f"this endpoint serves the embedding model {_model_name(host)!r}, which "
                                 f"does not generate text: send {EMBEDDINGS_ROUTE} or a native "
                                 "{\"input\": ...} embedding request", value if isinstance(value, str) else None)])


async def respond(host: EngineHost, job_input: dict[str, Any], request_id: str) -> dict[str, Any]:
    """The OpenAI embedding response for one embedding job (either form)."""
    openai = "openai_route" in job_input
    if not openai:
        try:
            return await _embed(host, job_input, request_id, prefix="")
        except BadInput as exc:  # vLLM's refusals name the OpenAI body: name the native field
            raise BadInput([replace(p, field=_native_field(p.field)) for p in exc.problems]) from exc
    unknown = sorted(set(job_input) - {"openai_route", OPENAI_INPUT})
    body = job_input.get(OPENAI_INPUT, {})
    problems = [FieldProblem(name, "unknown field") for name in unknown]
    if not isinstance(body, dict):
        problems.append(FieldProblem(OPENAI_INPUT, f"must be a JSON object, got {type(body).__name__}"))
    if not serves_embeddings(host):
        problems.append(_no_embeddings(host, "openai_route", EMBEDDINGS_ROUTE))
    if problems:
        raise BadInput(problems)
    return await _embed(host, body, request_id, prefix=OPENAI_INPUT)


def _no_embeddings(host: EngineHost, field: str, value: str | None = None) -> FieldProblem:
    return FieldProblem(field, f"this endpoint serves the generative model {_model_name(host)!r}, which makes no "
                        "embeddings: deploy an embedding model (README, \"Embeddings\")", value)


async def _embed(host: EngineHost, body: dict[str, Any], request_id: str, *, prefix: str) -> dict[str, Any]:
    if not serves_embeddings(host):
        raise BadInput([_no_embeddings(host, "input")])
    from vllm.entrypoints.pooling.embed.protocol import EmbeddingCompletionRequest

    # Ours, with the bounds: the whole native input; on the OpenAI route its OpenAI fields (vLLM's extras are
    # vLLM's to check, as on `vllm serve`).
    ours = body if not prefix else {name: value for name, value in body.items() if name in EmbeddingInput.model_fields}
    try:
        checked = EmbeddingInput.model_validate(ours)
    except ValidationError as exc:
        raise BadInput(problems_from(exc, prefix=prefix)) from None
    loose = loose_boolean_problems(EmbeddingCompletionRequest, body, prefix=prefix)
    if loose:
        raise BadInput(loose)
    vllm_body = body if prefix else checked.model_dump(exclude_none=True)
    state = host.state
    try:
        request = EmbeddingCompletionRequest.model_validate({**vllm_body, "request_id": request_id})
    except ValidationError as exc:
        raise BadInput(problems_from(exc, prefix=OPENAI_INPUT)) from None
    except Exception as exc:  # vLLM's own request checks raise its typed errors (with the parameter)
        raise exception_error(host, exc, EMBEDDINGS_ROUTE) from exc
    _check_model(state.openai_serving_models, request.model)
    _check_dimensions(host, request)
    try:
        response = await host.call(state.serving_embedding(request, None))
    except Exception as exc:  # vLLM raises its refusals (context length, dimensions, token ids)
        raise exception_error(host, exc, EMBEDDINGS_ROUTE) from exc
    return _within_the_payload_limit(json.loads(response.body))


def _within_the_payload_limit(output: dict[str, Any]) -> dict[str, Any]:
    """``output``, or OUTPUT_TOO_LARGE when RunPod would refuse it (shared.payload: 10 MB for /run, 20 MB for
    /runsync): 2048 inputs of a 4096-dimension model are ~170 MB as JSON floats."""
    size, limit = payload.response_size(output), payload.response_limit()
    if size > limit:
        raise OutputTooLarge(
            f"the embeddings are {size} bytes, over the response limit of {limit} bytes ({payload.LIMIT_ENV}; "
            f"RunPod allows {payload.RUN_LIMIT_BYTES} for /run and {payload.RUNSYNC_LIMIT_BYTES} for /runsync): "
            "send fewer inputs per request, ask for encoding_format \"base64\" (about a quarter of the size), or for "
            "shorter vectors (dimensions) on a Matryoshka model")
    return output


def _check_model(models: Any, name: str | None) -> None:
    """BadInput for a ``model`` this endpoint does not serve. vLLM's pooling servers look the name up but go on
    whatever they find (vLLM 0.32 ``PoolingBaseServing._init_ctx``), where its chat server answers 404."""
    if name and not models.is_base_model(name) and name not in models.lora_requests:
        served = ", ".join(path.name for path in models.base_model_paths)
        raise BadInput.field(f"{OPENAI_INPUT}.model", f"is not served here; this endpoint serves: {served}", name)


def _check_dimensions(host: EngineHost, request: Any) -> None:
    """vLLM's own check of ``dimensions`` against the model (Matryoshka or not, which sizes), run first so the
    refusal names the field: vLLM raises it from inside the request without naming it."""
    if request.dimensions is None:
        return
    from vllm.exceptions import VLLMValidationError

    try:
        request.to_pooling_params().verify(host.engine.model_config)
    except VLLMValidationError as exc:
        raise BadInput.field(f"{OPENAI_INPUT}.dimensions", str(exc), request.dimensions) from None


def _native_field(field: str) -> str:
    return field.removeprefix(OPENAI_INPUT).removeprefix(".") or "input"


def _model_name(host: EngineHost) -> str:
    return host.settings.served_model_names[0]


def reference() -> str:
    """The README reference of the native embedding request (generated by devkit.docs)."""
    return markdown_table(EmbeddingInput)
