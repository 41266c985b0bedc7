"""A local stand-in for a RunPod Serverless endpoint (docs: docs/local-endpoint.md)."""

from devkit.endpoint.server import LocalEndpoint
from devkit.endpoint.spec import WorkerSpec
from devkit.endpoint.workers import StartupFailed

__all__ = ["LocalEndpoint", "StartupFailed", "WorkerSpec"]
