"""What a worker author imports, in one place: inputs, errors, settings, outputs, serve.

    from shared.authoring import BadInput, Field, WorkerInput, parse, serve

Inputs (``WorkerInput``, ``Field``, ``parse``, base64 and image decoding), errors (raise where detected;
the runtime turns them into the envelope), settings (``number``, ``folder``), outputs (files inline or
in a bucket, within RunPod's payload limit) and ``serve``. A worker is a class with ``setup()`` and
``handler(job)`` (shared.serving); its package's ``__main__`` calls ``serve(Worker())``. Each name is
also importable from the module that defines it; this one only gathers them, and imports nothing heavy
(no runpod, torch or PIL).

The runtime these drive is not here, since a worker never calls it: ``shared.guard.guard`` (every
failure into the envelope), ``shared.job_loop`` (the runpod SDK's job loop), ``shared.stream_coalescing``,
``shared.logs`` and ``shared.json_limits``.
"""

from pydantic import Field

from shared.encoding import decode_bytes, decode_image, encode_bytes, image_bytes
from shared.errors import (
    BadInput,
    DeviceFailure,
    FieldProblem,
    GpuOutOfMemory,
    InputTooLarge,
    InvalidOutput,
    NotReady,
    OutputTooLarge,
    StartupError,
    WorkerError,
)
from shared.payload import Bucket, FileRef, OutputFile, deliver
from shared.serving import serve
from shared.settings import folder, number
from shared.torch_errors import release_gpu_memory
from shared.validation import WorkerInput, parse

__all__ = [
    "BadInput",
    "Bucket",
    "DeviceFailure",
    "Field",
    "FieldProblem",
    "FileRef",
    "GpuOutOfMemory",
    "InputTooLarge",
    "InvalidOutput",
    "NotReady",
    "OutputFile",
    "OutputTooLarge",
    "StartupError",
    "WorkerError",
    "WorkerInput",
    "decode_bytes",
    "decode_image",
    "deliver",
    "encode_bytes",
    "folder",
    "image_bytes",
    "number",
    "parse",
    "release_gpu_memory",
    "serve",
]
