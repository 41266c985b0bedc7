"""Start command of the sdxl image: `python -m worker_sdxl`."""

from shared.serving import serve
from worker_sdxl.worker import SdxlWorker

if __name__ == "__main__":
    serve(SdxlWorker())
