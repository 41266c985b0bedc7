"""Start command of the progress-demo image: `python -m worker_progress_demo`."""

from shared.serving import serve
from worker_progress_demo.worker import ProgressDemo

if __name__ == "__main__":
    serve(ProgressDemo())
