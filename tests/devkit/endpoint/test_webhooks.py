"""Webhook delivery as RunPod sends it: the job's status body, retried until a 200, 3 tries in all."""

from __future__ import annotations

import asyncio

from devkit.endpoint import webhooks


def test_runpods_schedule_is_3_tries_10_seconds_apart():
    assert (webhooks.ATTEMPTS, webhooks.RETRY_PAUSE_S) == (3, 10.0)


def test_a_webhook_is_retried_until_it_answers_200(webhook_receiver):
    webhook_receiver.answers = [500, 204]  # only a 200 acknowledges it (RunPod docs: "should return a 200")
    body = {"id": "job-1", "status": "COMPLETED", "output": {"x": 1}}
    assert asyncio.run(webhooks.deliver(webhook_receiver.url, body, pause=0))
    assert webhook_receiver.bodies == [body] * 3


def test_a_webhook_gives_up_after_three_tries(webhook_receiver):
    webhook_receiver.answers = [500, 500, 500, 200]
    assert not asyncio.run(webhooks.deliver(webhook_receiver.url, {"id": "job-1"}, pause=0))
    assert len(webhook_receiver.bodies) == webhooks.ATTEMPTS


def test_an_unreachable_webhook_fails_without_raising():
    assert not asyncio.run(webhooks.deliver("http://127.0.0.1:9/hook", {"id": "job-1"}, pause=0))
