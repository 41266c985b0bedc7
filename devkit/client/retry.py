"""When to retry an HTTP call to RunPod, and how long to wait: exponential backoff with full jitter.

Shared by the job client and by deploy. Only transient failures are retried: HTTP 429, 5xx and
network errors. Any other 4xx means the request itself is wrong; sending it again cannot help.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from devkit.client.errors import Unreachable

log = logging.getLogger(__name__)

#: Network failures where the request never reached the server: safe to resend even a job submission.
NOT_DELIVERED = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def is_transient_status(status: int) -> bool:
    return status == 429 or status >= 500


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``attempts`` calls; before retry n (1-based) wait uniform(0, min(cap, base * 2**(n-1)))."""

    attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 8.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Full jitter spreads clients that failed together; a server's Retry-After wins, up to the cap."""
        delay = self.rng.uniform(0, min(self.cap_s, self.base_s * 2 ** (retry - 1)))
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap_s))
        return delay


def send_with_retries(
    send: Callable[[], httpx.Response], policy: RetryPolicy, *, resend_after_delivery: bool = True
) -> httpx.Response:
    """Call ``send`` until it gives a non-transient answer or the attempts run out.

    Returns the last response (possibly still a 429/5xx: the caller turns it into its own error) or
    raises the last network error as `Unreachable`. ``resend_after_delivery=False`` is for calls that are not
    idempotent (a job submission): a network error after the request left is not retried, since the
    server may have acted on it.
    """
    for attempt in range(1, policy.attempts + 1):
        last = attempt == policy.attempts
        try:
            response = send()
        except httpx.TransportError as exc:
            if last or not (resend_after_delivery or isinstance(exc, NOT_DELIVERED)):
                request = exc.request
                raise Unreachable(request.method, str(request.url.copy_with(query=None)), exc) from exc
            log.info("network error (%s); retry %d of %d", type(exc).__name__, attempt, policy.attempts - 1)
            policy.sleep(policy.delay(attempt))
            continue
        if last or not is_transient_status(response.status_code):
            return response
        log.info("HTTP %d; retry %d of %d", response.status_code, attempt, policy.attempts - 1)
        policy.sleep(policy.delay(attempt, _retry_after_seconds(response)))
    raise AssertionError("unreachable: the last attempt always returns or raises")


def _retry_after_seconds(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # an HTTP date: rare from RunPod; fall back to our own backoff
