"""llm-vllm: a vLLM engine in the worker process, continuous batching, native and OpenAI-compatible input."""
