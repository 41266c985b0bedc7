"""llm-hf generation through the handler: prompt, chat, streaming, defaults, seeds, equality with transformers."""

from __future__ import annotations

import torch

from devkit.fixtures.llm import CONTEXT
from shared.llm.inputs import DEFAULT_MAX_TOKENS


def test_prompt_gives_text_finish_reason_and_usage(worker, run, greedy):
    [result] = run(greedy(prompt="Hello there", max_tokens=8))
    prompt_tokens = len(worker.loaded.tokenizer("Hello there").input_ids)
    assert isinstance(result["text"], str)
    assert result["finish_reason"] == "length"
    assert result["usage"] == {"prompt_tokens": prompt_tokens, "completion_tokens": 8,
                               "total_tokens": prompt_tokens + 8}


def test_chat_messages_are_rendered_with_the_chat_template(worker, run, greedy):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}]
    [result] = run(greedy(messages=messages, max_tokens=5))
    rendered = worker.loaded.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    expected = len(worker.loaded.tokenizer(rendered, add_special_tokens=False).input_ids)
    assert result["usage"]["prompt_tokens"] == expected
    assert result["usage"]["completion_tokens"] == 5


def test_openai_style_text_parts_are_joined(run, greedy):
    parts = [{"type": "text", "text": "Hi"}, {"type": "text", "text": " there"}]
    [as_parts] = run(greedy(messages=[{"role": "user", "content": parts}], max_tokens=6))
    [as_text] = run(greedy(messages=[{"role": "user", "content": "Hi there"}], max_tokens=6))
    assert as_parts == as_text


def test_stream_yields_deltas_then_finish_reason_and_usage(run, greedy):
    chunks = run(greedy(prompt="Hello", max_tokens=12, stream=True))
    *deltas, last = chunks
    assert all(set(chunk) == {"text"} and chunk["text"] for chunk in deltas)
    assert last["text"] == "" and last["finish_reason"] == "length"
    assert last["usage"]["completion_tokens"] == 12
    assert 1 <= len(deltas) <= 12


def test_streamed_text_joins_to_the_non_streamed_text(run, greedy):
    request = greedy(prompt="The quick brown fox", max_tokens=40)
    [whole] = run(request)
    chunks = run({**request, "stream": True})
    assert "".join(chunk["text"] for chunk in chunks) == whole["text"]
    assert chunks[-1]["usage"] == whole["usage"]


def test_greedy_output_equals_transformers_generate(worker, run, greedy):
    tokenizer, model = worker.loaded.tokenizer, worker.loaded.model
    ids = tokenizer("Streaming tokens one at a time").input_ids
    with torch.inference_mode():
        out = model.generate(torch.tensor([ids]), max_new_tokens=30, min_new_tokens=30, do_sample=False)
    expected = tokenizer.decode(out[0, len(ids):], skip_special_tokens=True)
    [result] = run(greedy(prompt="Streaming tokens one at a time", max_tokens=30))
    assert result["text"] == expected


def test_plain_greedy_output_equals_transformers_generate(worker, run):
    tokenizer, model = worker.loaded.tokenizer, worker.loaded.model
    ids = tokenizer("Hello").input_ids
    with torch.inference_mode():
        out = model.generate(torch.tensor([ids]), max_new_tokens=25, do_sample=False)
    [result] = run({"prompt": "Hello", "max_tokens": 25, "temperature": 0})
    assert result["text"] == tokenizer.decode(out[0, len(ids):], skip_special_tokens=True)
    assert result["usage"]["completion_tokens"] == out.shape[1] - len(ids)


def test_min_tokens_holds_off_end_of_sequence(run):
    [result] = run({"prompt": "Hi", "max_tokens": 20, "min_tokens": 20, "temperature": 1.0, "seed": 3})
    assert result["usage"]["completion_tokens"] == 20
    assert result["finish_reason"] == "length"


def test_same_seed_same_text(run):
    request = {"prompt": "Once", "max_tokens": 24, "temperature": 1.2, "top_p": 0.9, "top_k": 50,
               "repetition_penalty": 1.3, "seed": 1234, "ignore_eos": True}
    assert run(request) == run(request)


def test_default_max_tokens_is_what_the_context_leaves(worker, run):
    prompt = "word " * 200
    prompt_tokens = len(worker.loaded.tokenizer(prompt).input_ids)
    assert CONTEXT - prompt_tokens < DEFAULT_MAX_TOKENS  # the default must be capped by the context here
    [result] = run({"prompt": prompt, "temperature": 0, "ignore_eos": True})
    assert result["usage"]["completion_tokens"] == CONTEXT - prompt_tokens
    assert result["finish_reason"] == "length"


def test_worker_serves_several_jobs_at_once_by_default(worker):
    assert worker.max_concurrency > 1


def test_a_busy_consumer_gets_the_same_stream_text_in_fewer_chunks(run, run_with_busy_consumer, greedy):
    request = greedy(prompt="The quick brown fox", max_tokens=40)
    [whole] = run(request)
    chunks = run_with_busy_consumer({**request, "stream": True})
    *deltas, last = chunks
    assert "".join(chunk["text"] for chunk in deltas) == whole["text"]
    assert all(set(chunk) == {"text"} and chunk["text"] for chunk in deltas)
    assert len(deltas) < 40  # what was generated while the consumer was busy came as one chunk
    assert last == {"text": "", "finish_reason": "length", "usage": whole["usage"]}
