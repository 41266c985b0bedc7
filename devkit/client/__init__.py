"""Client library for RunPod queue endpoints and the local endpoint: ``from devkit.client import Client``."""

from devkit.client.client import DEFAULT_BASE_URL, Client, JobStatus, outcome
from devkit.client.errors import (
    ApiError,
    ClientError,
    JobCancelled,
    JobError,
    JobFailed,
    JobTimedOut,
    Problem,
    RequestRejected,
    ServerUnavailable,
    Unauthorized,
    Unreachable,
    WaitTimeout,
)
from devkit.client.retry import RetryPolicy

__all__ = [
    "DEFAULT_BASE_URL",
    "ApiError",
    "Client",
    "ClientError",
    "JobCancelled",
    "JobError",
    "JobFailed",
    "JobStatus",
    "JobTimedOut",
    "Problem",
    "RequestRejected",
    "RetryPolicy",
    "ServerUnavailable",
    "Unauthorized",
    "Unreachable",
    "WaitTimeout",
    "outcome",
]
