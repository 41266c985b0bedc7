"""llm-hf: a transformers LLM worker with continuous batching, streaming and OpenAI-compatible routes."""
