"""The body of /run and /runsync as RunPod reads it: ``input`` plus ``webhook``, ``policy`` and ``s3Config``.

Fields and bounds are RunPod's (docs, "Send API requests", "Advanced options"; the JS and Go SDKs'
``EndpointInputPayload`` / ``JobInput`` types): ``policy.executionTimeout`` 5 s to 7 days,
``policy.ttl`` 10 s to 7 days (24 h when unset), ``policy.lowPriority`` a boolean, ``s3Config`` an
object handed to the worker in the job (the worker checks its fields: shared.payload.S3Config).
Unknown top-level keys are ignored, as RunPod's clients may send keys this stand-in does not use.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, field_validator

#: ``policy.executionTimeout`` bounds, in ms.
MIN_EXECUTION_TIMEOUT_MS = 5_000
#: ``policy.ttl`` lower bound, in ms.
MIN_TTL_MS = 10_000
#: Upper bound of both, in ms: 7 days.
MAX_POLICY_MS = 7 * 24 * 60 * 60 * 1000


class Policy(BaseModel):
    """``policy``: per-job execution timeout, total lifespan (TTL) and priority."""

    model_config = ConfigDict(extra="ignore")

    executionTimeout: StrictInt | None = Field(None, ge=MIN_EXECUTION_TIMEOUT_MS, le=MAX_POLICY_MS)
    ttl: StrictInt | None = Field(None, ge=MIN_TTL_MS, le=MAX_POLICY_MS)
    lowPriority: StrictBool = False


class JobRequest(BaseModel):
    """A job submission. ``input`` is required and goes to the worker as it is."""

    model_config = ConfigDict(extra="ignore")

    input: Any = Field(...)
    webhook: str | None = None
    #: In the JS and Go SDKs' request types but undocumented: accepted, and checked like ``webhook``.
    webhookV2: str | None = None
    policy: Policy | None = None
    s3Config: dict[str, Any] | None = None

    @field_validator("webhook", "webhookV2")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value

    @property
    def execution_timeout_s(self) -> float | None:
        return None if self.policy is None or self.policy.executionTimeout is None \
            else self.policy.executionTimeout / 1000

    @property
    def ttl_s(self) -> float | None:
        return None if self.policy is None or self.policy.ttl is None else self.policy.ttl / 1000

    @property
    def low_priority(self) -> bool:
        return self.policy is not None and self.policy.lowPriority


class BadRequest(ValueError):
    """A request body RunPod would refuse; the message names each field and why."""


def parse(body: dict[str, Any]) -> JobRequest:
    try:
        return JobRequest.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
                             for error in exc.errors(include_url=False))
        raise BadRequest(f"invalid request body: {problems}") from None
