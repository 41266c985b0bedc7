"""The LLM workers' contract: the native input and output both serve, worker-vllm's form, and the OpenAI names.

A native-API client switches between llm-hf and llm-vllm by changing the endpoint id alone. The OpenAI
routes are not interchangeable byte for byte: each worker serves them with its own request and response
models (llm-hf's in ``worker_llm_hf.openai``; llm-vllm's are vLLM's own serving layer, with more fields:
tools, ``response_format``, log-probabilities, ``n``), and ``model`` must be each worker's own served name.

- `shared.llm.inputs`: the native input (prompt or messages + sampling, structured outputs), its bounds, and the
  context check.
- `shared.llm.openai`: the OpenAI names both use: route names, finish reasons, usage, stream options.
- `shared.llm.worker_vllm`: runpod-workers/worker-vllm's native request (``prompt``/``messages`` +
  ``sampling_params``), answered in its shapes (OpenAI objects, or SSE text when streamed), so its clients
  work unchanged on both workers.
- `shared.llm.requests`: `GenerationRequest`, the typed request every job becomes; `parse_native`, the native
  input parsed into it; `completion_budget`.
- `shared.llm.outputs`: what an engine reports (text deltas, then `Finish`), and `render`, which turns
  that into the chunks the handler yields: native, or another API's `ResponseShape` (llm-hf's OpenAI
  objects).

An engine (transformers, vLLM) only has to produce an async iterator of ``str`` deltas ended by one
`Finish`; everything a client of the native API sees is built here.
"""
