"""A scripted RunPod queue endpoint (httpx MockTransport): each route answers from a queue of replies."""

from __future__ import annotations

import json
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from devkit.client import Client, RetryPolicy

BASE = "https://api.runpod.test/v2"
KEY = "rp_client_key_abcdef0123456789"


@dataclass
class Scripted:
    """``reply(route, ...)`` queues answers; the last answer of a route repeats once its queue is empty."""

    replies: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))
    calls: list[httpx.Request] = field(default_factory=list)

    def reply(self, route: str, *answers: Any) -> None:
        """An answer is (status, json body), an httpx exception class to raise, or a body for HTTP 200."""
        self.replies[route].extend(answers)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        route = f"{request.method} {request.url.path.removeprefix('/v2/ep1')}"
        queue = self.replies.get(route)
        if not queue:
            raise AssertionError(f"unscripted call {route}")
        answer = queue.popleft() if len(queue) > 1 else queue[0]
        if isinstance(answer, type) and issubclass(answer, Exception):
            raise answer("scripted network failure", request=request)
        status, body = answer if isinstance(answer, tuple) else (200, answer)
        headers = {}
        if isinstance(body, dict) and "_headers" in body:
            headers = body.pop("_headers")
        return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)

    def routes(self) -> list[str]:
        return [f"{r.method} {r.url.path.removeprefix('/v2/ep1')}" for r in self.calls]


@pytest.fixture
def endpoint() -> Scripted:
    return Scripted()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def api_key() -> str:
    return KEY


@pytest.fixture
def client(endpoint, sleeps, api_key):
    with Client("ep1", base_url=BASE, api_key=api_key, retry=RetryPolicy(attempts=4, sleep=sleeps.append),
                poll_interval_s=0, transport=httpx.MockTransport(endpoint.handle)) as client:
        yield client
