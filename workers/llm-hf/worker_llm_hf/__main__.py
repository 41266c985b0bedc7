"""Start command of the llm-hf image: `python -m worker_llm_hf`."""

from shared.serving import serve
from worker_llm_hf.worker import LlmHf

if __name__ == "__main__":
    serve(LlmHf())
