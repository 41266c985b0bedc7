"""Start command of the sdxl image: `python -m sdxl`."""

from sdxl.worker import SdxlWorker
from shared.serving import serve

if __name__ == "__main__":
    serve(SdxlWorker())
