"""The body of /run and /runsync: RunPod's fields, bounds and defaults, and a 400's reason for each bad one."""

from __future__ import annotations

import pytest

from devkit.endpoint.job_request import MAX_POLICY_MS, BadRequest, parse


def test_a_plain_body_is_its_input_with_runpods_defaults():
    request = parse({"input": {"prompt": "x"}})
    assert request.input == {"prompt": "x"}
    assert (request.execution_timeout_s, request.ttl_s, request.low_priority) == (None, None, False)
    assert (request.webhook, request.s3Config) == (None, None)


def test_the_policy_is_read_in_milliseconds():
    request = parse({"input": {}, "policy": {"executionTimeout": 900_000, "ttl": 3_600_000, "lowPriority": True}})
    assert (request.execution_timeout_s, request.ttl_s, request.low_priority) == (900, 3600, True)


def test_s3_config_and_webhooks_are_kept_and_unknown_keys_ignored():
    s3 = {"accessId": "a", "accessSecret": "s", "bucketName": "b", "endpointUrl": "http://127.0.0.1:9"}
    request = parse({"input": 1, "s3Config": s3, "webhook": "https://h/x", "webhookV2": "http://h/y", "extra": 1})
    assert (request.s3Config, request.webhook, request.webhookV2) == (s3, "https://h/x", "http://h/y")


@pytest.mark.parametrize(("body", "named"), [
    ({"input": {}, "policy": {"executionTimeout": 4_999}}, "policy.executionTimeout"),
    ({"input": {}, "policy": {"executionTimeout": MAX_POLICY_MS + 1}}, "policy.executionTimeout"),
    ({"input": {}, "policy": {"executionTimeout": "600000"}}, "policy.executionTimeout"),
    ({"input": {}, "policy": {"ttl": 9_999}}, "policy.ttl"),
    ({"input": {}, "policy": {"ttl": MAX_POLICY_MS + 1}}, "policy.ttl"),
    ({"input": {}, "policy": {"ttl": 1.5e4}}, "policy.ttl"),
    ({"input": {}, "policy": {"lowPriority": "yes"}}, "policy.lowPriority"),
    ({"input": {}, "policy": [1]}, "policy"),
    ({"input": {}, "s3Config": "bucket"}, "s3Config"),
    ({"input": {}, "webhook": "ftp://h"}, "webhook"),
    ({"input": {}, "webhook": 5}, "webhook"),
    ({"policy": {}}, "input"),
])
def test_a_bad_field_is_refused_naming_it(body, named):
    with pytest.raises(BadRequest, match=f"{named}: "):
        parse(body)
