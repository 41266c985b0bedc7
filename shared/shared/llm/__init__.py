"""The LLM workers' contract: the native input and output both serve, and llm-hf's OpenAI shapes.

A native-API client switches between llm-hf and llm-vllm by changing the endpoint id alone. The OpenAI
routes are not interchangeable byte for byte: llm-vllm answers them with vLLM's own serving layer (more
fields: tools, ``response_format``, log-probabilities, ``n``) and uses only the route names from here, and
``model`` must be each worker's own served name.

- `shared.llm.inputs`: the native input (prompt or messages + sampling, structured outputs), its bounds, and the
  context check.
- `shared.llm.openai`: llm-hf's OpenAI-compatible requests as RunPod delivers them (``openai_route`` +
  ``openai_input``) and the response/chunk shapes of ``/v1/chat/completions``, ``/v1/completions``,
  ``/v1/models``.
- `shared.llm.worker_vllm`: runpod-workers/worker-vllm's native request (``prompt``/``messages`` +
  ``sampling_params``), answered in its shapes (OpenAI objects, or SSE text when streamed), so its clients
  work unchanged on both workers.
- `shared.llm.requests`: one entry point, `parse_job`, that turns any job input into a typed request.
- `shared.llm.outputs`: what an engine reports (text deltas, then `Finish`), and `render`, which turns
  that into the chunks the handler yields (native on both workers, OpenAI on llm-hf).

An engine (transformers, vLLM) only has to produce an async iterator of ``str`` deltas ended by one
`Finish`; everything a client of the native API (and of llm-hf's OpenAI routes) sees is built here.
"""
