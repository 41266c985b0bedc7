"""Webhook delivery as RunPod sends it: the job's status body, retried until a 200, 3 tries in all."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from devkit.endpoint import webhooks


class Receiver(BaseHTTPRequestHandler):
    """Answers the statuses in ``server.answers`` in turn (200 once they run out), keeping each body."""

    def do_POST(self):
        self.server.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(self.server.answers.pop(0) if self.server.answers else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    server.bodies, server.answers = [], []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def url_of(server) -> str:
    return f"http://127.0.0.1:{server.server_port}/hook"


def test_runpods_schedule_is_3_tries_10_seconds_apart():
    assert (webhooks.ATTEMPTS, webhooks.RETRY_PAUSE_S) == (3, 10.0)


def test_a_webhook_is_retried_until_it_answers_200(receiver):
    receiver.answers = [500, 204]  # only a 200 acknowledges it (RunPod docs: "should return a 200")
    body = {"id": "job-1", "status": "COMPLETED", "output": {"x": 1}}
    assert asyncio.run(webhooks.deliver(url_of(receiver), body, pause=0))
    assert receiver.bodies == [body] * 3


def test_a_webhook_gives_up_after_three_tries(receiver):
    receiver.answers = [500, 500, 500, 200]
    assert not asyncio.run(webhooks.deliver(url_of(receiver), {"id": "job-1"}, pause=0))
    assert len(receiver.bodies) == webhooks.ATTEMPTS


def test_an_unreachable_webhook_fails_without_raising():
    assert not asyncio.run(webhooks.deliver("http://127.0.0.1:9/hook", {"id": "job-1"}, pause=0))
