"""A request's prompt as token ids (chat template applied) and its completion budget, checked against the context."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError

from shared.errors import BadInput
from shared.llm.requests import GenerationRequest, completion_budget


@dataclass(frozen=True)
class Prompt:
    ids: list[int]
    max_tokens: int


class PromptBuilder:
    def __init__(self, tokenizer: Any, context: int):
        self._tokenizer = tokenizer
        self._context = context
        # Handler threads share one fast tokenizer; its Rust core refuses concurrent use ("Already borrowed").
        self._lock = threading.Lock()

    def build(self, request: GenerationRequest) -> Prompt:
        """Token ids and max_tokens; BadInput (before any generation) if the context cannot hold them."""
        ids = self._chat_ids(request) if request.messages is not None else self._text_ids(request.prompt)
        if not ids:
            raise BadInput.field(request.prompt_field, "holds no token once tokenized")
        return Prompt(ids=ids, max_tokens=completion_budget(request, len(ids), self._context))

    def _text_ids(self, prompt: str) -> list[int]:
        with self._lock:
            return self._tokenizer(prompt).input_ids

    def _chat_ids(self, request: GenerationRequest) -> list[int]:
        if not self._tokenizer.chat_template:
            raise BadInput.field(request.prompt_field, "this model has no chat template: send a plain prompt instead")
        with self._lock:
            try:
                text = self._tokenizer.apply_chat_template(request.chat(), add_generation_prompt=True, tokenize=False)
            except TemplateError as exc:  # templates refuse some conversations (e.g. roles not alternating)
                raise BadInput.field(request.prompt_field, f"the model's chat template refused them: {exc}") from None
            # The template already holds the special tokens (BOS): adding them again would double them.
            return self._tokenizer(text, add_special_tokens=False).input_ids
