"""Start command of the llm-hf image: `python -m llm_hf`."""

from llm_hf.worker import LlmHf
from shared.serving import serve

if __name__ == "__main__":
    serve(LlmHf())
