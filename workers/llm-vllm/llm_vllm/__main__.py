"""Start command of the llm-vllm image: `python -m llm_vllm`.

The guard is load-bearing: vLLM starts its engine core with multiprocessing's spawn method, which
re-imports the main module in the child; without it the child would start a worker of its own.
"""

from llm_vllm.worker import VllmWorker
from shared.serving import serve

if __name__ == "__main__":
    serve(VllmWorker())
