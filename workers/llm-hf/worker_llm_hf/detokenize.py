"""Token ids to text deltas, one token at a time: never a broken UTF-8 character, stop sequences cut exactly."""

from __future__ import annotations

from typing import Any

#: Prompt tokens decoded in front of the completion: some tokenizers (SentencePiece) space a token
#: differently at the start of a text than after another token.
_PROMPT_CONTEXT_TOKENS = 4
_REPLACEMENT = "\ufffd"


class IncrementalDecoder:
    """Text deltas from a growing token list.

    A byte-level tokenizer splits a multi-byte character over several tokens; decoding such a token alone
    gives U+FFFD. The decoder keeps a window of not-yet-emitted tokens and emits only once the window
    decodes to whole characters, so the deltas concatenate to the same text as decoding all tokens at once.
    """

    def __init__(self, tokenizer: Any, prompt_ids: list[int]):
        self._tokenizer = tokenizer
        self._ids = list(prompt_ids[-_PROMPT_CONTEXT_TOKENS:])
        self._prefix = 0  # start of the context decoded in front of the new tokens
        self._read = len(self._ids)  # tokens before this index have been emitted

    def feed(self, token: int) -> str:
        self._ids.append(token)
        prefix_text, text = self._decode_window()
        if len(text) > len(prefix_text) and not text.endswith(_REPLACEMENT):
            self._prefix, self._read = self._read, len(self._ids)
            return text[len(prefix_text):]
        return ""

    def flush(self) -> str:
        """What is still held back when generation ends (an unfinished character decodes as U+FFFD)."""
        if self._read == len(self._ids):
            return ""
        prefix_text, text = self._decode_window()
        self._prefix, self._read = self._read, len(self._ids)
        return text[len(prefix_text):]

    def _decode_window(self) -> tuple[str, str]:
        decode = self._tokenizer.decode
        prefix_text = decode(self._ids[self._prefix:self._read], skip_special_tokens=True)
        return prefix_text, decode(self._ids[self._prefix:], skip_special_tokens=True)


class StopMatcher:
    """Cuts the text before the first stop sequence, holding back any tail that could begin one."""

    def __init__(self, stops: list[str]):
        self._stops = stops
        self._pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """(text safe to emit, whether a stop sequence was reached)."""
        if not self._stops:
            return text, False
        buffer = self._pending + text
        found = [i for i in (buffer.find(stop) for stop in self._stops) if i >= 0]
        if found:
            self._pending = ""
            return buffer[:min(found)], True
        hold = self._longest_partial_stop(buffer)
        self._pending = buffer[len(buffer) - hold:]
        return buffer[:len(buffer) - hold], False

    def flush(self) -> str:
        pending, self._pending = self._pending, ""
        return pending

    def _longest_partial_stop(self, buffer: str) -> int:
        best = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(buffer)), best, -1):
                if buffer.endswith(stop[:size]):
                    best = size
                    break
        return best
