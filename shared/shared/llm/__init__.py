"""The LLM contract shared by llm-hf and llm-vllm, so a client can switch workers without changing a byte.

- `shared.llm.inputs`: the native input (prompt or messages + sampling), its bounds, and the context check.
- `shared.llm.openai`: OpenAI-compatible requests as RunPod delivers them (``openai_route`` +
  ``openai_input``) and the response/chunk shapes of ``/v1/chat/completions``, ``/v1/completions``,
  ``/v1/models``.
- `shared.llm.requests`: one entry point, `parse_job`, that turns any job input into a typed request.
- `shared.llm.outputs`: what an engine reports (text deltas, then `Finish`), and `render`, which turns
  that into the chunks the handler yields for every API.

An engine (transformers, vLLM) only has to produce an async iterator of ``str`` deltas ended by one
`Finish`; everything a client sees is built here.
"""
