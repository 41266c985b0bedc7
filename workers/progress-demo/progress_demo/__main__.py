"""Start command of the progress-demo image: `python -m progress_demo`."""

from progress_demo.worker import ProgressDemo
from shared.serving import serve

if __name__ == "__main__":
    serve(ProgressDemo())
