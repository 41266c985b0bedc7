"""OpenAI routes of the local endpoint, through the official openai client, with a real worker process."""

from __future__ import annotations

import openai
import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def echo(endpoint_factory, fixture_worker):
    endpoint = endpoint_factory([fixture_worker("openai_echo", min_workers=1, max_workers=1)])
    return openai.OpenAI(base_url=f"{endpoint.base_url}/v2/openai-echo/openai/v1", api_key="local", max_retries=0)


def test_a_chat_completion_answers_with_the_workers_response_object(echo):
    reply = echo.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hello there"}])
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.content == "hello there"


def test_a_streamed_chat_completion_arrives_as_server_sent_events_in_order(echo):
    stream = echo.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "one two three"}], stream=True
    )
    chunks = list(stream)
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == "one two three "
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_a_get_route_is_forwarded_with_an_empty_input(echo):
    assert [model.id for model in echo.models.list()] == ["echo"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_bad_request_is_an_openai_400_naming_the_field(echo, stream):
    with pytest.raises(openai.BadRequestError) as caught:
        echo.chat.completions.create(model="echo", messages=[], stream=stream)
    error = caught.value.body
    assert error["code"] == "BAD_INPUT"
    assert error["param"] == "messages"
    assert error["type"] == "invalid_request_error"
