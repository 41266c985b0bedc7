"""Start command of the llm-vllm image: `python -m worker_llm_vllm`.

The guard is load-bearing: vLLM starts its engine core with multiprocessing's spawn method, which
re-imports the main module in the child; without it the child would start a worker of its own.
"""

from shared.serving import serve
from worker_llm_vllm.worker import VllmWorker

if __name__ == "__main__":
    serve(VllmWorker())
