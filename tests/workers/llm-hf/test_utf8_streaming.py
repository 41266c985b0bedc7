"""Streaming never emits a broken character: multi-byte characters split over tokens come out whole."""

from __future__ import annotations

import pytest

from llm_hf.detokenize import IncrementalDecoder

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
