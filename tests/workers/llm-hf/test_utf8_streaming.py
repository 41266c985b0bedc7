"""Streaming never emits a broken character: multi-byte characters split over tokens come out whole."""

from __future__ import annotations

import pytest
import torch

from worker_llm_hf.detokenize import IncrementalDecoder

TEXTS = ["Emoji 🙂🚀 and 日本語, naïve café", "🇫🇷🇯🇵👍", "Ελληνικά и Русский"]


@pytest.mark.parametrize("text", TEXTS)
def test_deltas_hold_whole_characters_and_join_to_the_text(worker, text):
    tokenizer = worker.loaded.tokenizer
    ids = tokenizer(text, add_special_tokens=False).input_ids
    # The fixture's byte-level BPE must really split characters, or this test proves nothing.
    assert any("\ufffd" in tokenizer.decode([i]) for i in ids)
    decoder = IncrementalDecoder(tokenizer, prompt_ids=tokenizer("Prompt:").input_ids)
    deltas = [decoder.feed(i) for i in ids]
    deltas.append(decoder.flush())
    assert all("\ufffd" not in delta for delta in deltas)
    assert "".join(deltas) == text


def test_an_unfinished_character_at_the_end_is_flushed_as_a_replacement(worker):
    tokenizer = worker.loaded.tokenizer
    ids = tokenizer("🚀", add_special_tokens=False).input_ids
    assert len(ids) > 1
    decoder = IncrementalDecoder(tokenizer, prompt_ids=[])
    held = [decoder.feed(i) for i in ids[:-1]]
    assert held == [""] * len(held)
    assert decoder.flush() == tokenizer.decode(ids[:-1])


def test_special_tokens_are_not_streamed(worker):
    tokenizer = worker.loaded.tokenizer
    decoder = IncrementalDecoder(tokenizer, prompt_ids=[])
    assert decoder.feed(tokenizer.eos_token_id) == ""
    assert decoder.feed(tokenizer("ok", add_special_tokens=False).input_ids[0]) != ""


class _Scripted:
    """The real model, with its logits overridden so a one-job batch emits ``script`` token by token."""

    def __init__(self, model, script: list[int]):
        self.model, self.script, self.step = model, script, 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def __call__(self, *args, **kwargs):
        out = self.model(*args, **kwargs)
        forced = torch.full_like(out.logits[:, -1, :], -1e4)
        forced[:, self.script[min(self.step, len(self.script) - 1)]] = 1e4
        out.logits[:, -1, :] = forced
        self.step += 1
        return out


def test_streamed_multibyte_text_arrives_in_whole_characters(worker, run, monkeypatch):
    text = "🙂🚀 日本語 naïve 🇫🇷"
    script = worker.loaded.tokenizer(text, add_special_tokens=False).input_ids
    monkeypatch.setattr(worker.engine, "model", _Scripted(worker.engine.model, script))
    chunks = run({"prompt": "x", "max_tokens": len(script), "temperature": 0, "ignore_eos": True, "stream": True})
    deltas = [chunk["text"] for chunk in chunks[:-1]]
    assert len(deltas) < len(script)  # some tokens were partial characters, held back and merged
    assert all(delta and "\ufffd" not in delta for delta in deltas)
    assert "".join(deltas) == text
