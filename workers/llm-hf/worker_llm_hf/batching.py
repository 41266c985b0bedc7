"""Continuous batching on one model: every running sequence advances by one token per forward pass.

One engine thread owns the model. A new sequence is prefilled alone (its prompt, batch of one), then its
KV cache joins the running batch; each decode step feeds the last token of every running sequence in one
forward pass and samples each row on its own. A sequence leaves the batch as soon as it ends (EOS, stop
sequence, token budget) or its job is cancelled, so short and long jobs do not wait for each other.

Why not transformers' own ContinuousBatchingManager (5.19): it has no per-request seed (one global RNG),
``do_sample`` is set for the whole manager (greedy and sampled jobs cannot share it), and min_new_tokens
and repetition_penalty are dropped as "unsupported by CB". See the worker README for the measurements.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from shared.llm.inputs import Sampling
from shared.llm.outputs import Event, Finish
from shared.torch_errors import release_gpu_memory
from worker_llm_hf.detokenize import IncrementalDecoder, StopMatcher
from worker_llm_hf.kv_cache import LeftPaddedCache
from worker_llm_hf.sampling import TokenSampler

log = logging.getLogger(__name__)

_STOP = object()


@dataclass(eq=False)
class _Sequence:
    """One job's generation, as the engine thread sees it."""

    prompt_ids: list[int]
    max_tokens: int
    sampler: TokenSampler
    decoder: IncrementalDecoder
    stops: StopMatcher
    emit: Callable[[Event | BaseException], None]
    last_token: int = -1
    cancelled: bool = False
    finished: bool = field(default=False)


class BatchEngine:
    """Runs every generation of one worker process on one model, batched."""

    def __init__(self, model: Any, tokenizer: Any, eos_ids: frozenset[int]):
        self.model = model
        self.device = model.device
        self.eos_ids = eos_ids
        self._eos_index = torch.tensor(sorted(eos_ids), dtype=torch.long, device=self.device)
        # The engine thread decodes with its own copy: a fast tokenizer used from two threads at once can
        # fail with "Already borrowed" while the handler threads encode prompts.
        self._tokenizer = copy.deepcopy(tokenizer)
        self._inbox: queue.Queue[_Sequence | object] = queue.Queue()
        self._running: list[_Sequence] = []
        #: The sequence being prefilled: counted as active, since it emits its first token before it joins
        #: ``_running`` (a reader that got that token must not see an idle engine).
        self._prefilling: _Sequence | None = None
        self._cache = LeftPaddedCache()
        self._thread: threading.Thread | None = None
        #: Largest number of sequences decoded in one forward pass so far (observability and tests).
        self.peak_batch = 0

    def start(self) -> BatchEngine:
        self._thread = threading.Thread(target=self._loop, name="llm-hf-engine", daemon=True)
        self._thread.start()
        return self

    @property
    def active(self) -> int:
        """Sequences being prefilled or in the running batch now."""
        return len(self._running) + (self._prefilling is not None)

    @property
    def queued(self) -> int:
        """Sequences submitted and not yet prefilled."""
        return self._inbox.qsize()

    def close(self) -> None:
        if self._thread is not None:
            self._inbox.put(_STOP)
            self._thread.join()
            self._thread = None

    async def generate(self, prompt_ids: list[int], sampling: Sampling, max_tokens: int) -> AsyncIterator[Event]:
        """Text deltas, then one Finish. Closing the iterator early (a cancelled job) stops the sequence."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Event | BaseException] = asyncio.Queue()

        def emit(event: Event | BaseException) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, event)
            except RuntimeError:  # the job's event loop is gone: nobody is listening any more
                sequence.cancelled = True

        sequence = _Sequence(
            prompt_ids=prompt_ids,
            max_tokens=max_tokens,
            sampler=TokenSampler(sampling, prompt_ids, self.eos_ids, self.device),
            decoder=IncrementalDecoder(self._tokenizer, prompt_ids),
            stops=StopMatcher(sampling.stop),
            emit=emit,
        )
        self._inbox.put(sequence)
        try:
            while True:
                event = await events.get()
                if isinstance(event, BaseException):
                    raise event
                yield event
                if isinstance(event, Finish):
                    return
        finally:
            sequence.cancelled = True  # read by the engine thread at its next step; harmless once finished

    # --- engine thread ------------------------------------------------------------------------------

    def _loop(self) -> None:
        with torch.inference_mode():
            while True:
                try:
                    if not self._admit():
                        return
                    self._drop_ended()
                    if self._running:
                        self._step_all()
                except Exception as exc:  # e.g. CUDA OOM mid-step: the batch's state is unusable
                    self._abort_running(exc)

    def _admit(self) -> bool:
        """Prefill the sequences that arrived; wait for one if nothing runs. False once closed."""
        while True:
            try:
                item = self._inbox.get(block=not self._running)
            except queue.Empty:
                return True
            if item is _STOP:
                return False
            if not item.cancelled:
                self._prefilling = item
                try:
                    self._prefill(item)
                finally:
                    self._prefilling = None

    def _prefill(self, sequence: _Sequence) -> None:
        from transformers import DynamicCache

        try:
            cache = DynamicCache(config=self.model.config)
            ids = torch.tensor([sequence.prompt_ids], dtype=torch.long, device=self.device)
            out = self.model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
            self._advance(sequence, sequence.sampler.next_token(out.logits[0, -1]))
        except Exception as exc:  # this sequence only: the running batch is untouched
            self._fail([sequence], exc)
            release_gpu_memory()
            return
        if not sequence.finished:
            self._running.append(sequence)  # first: if joining the cache fails, the loop fails it with the rest
            self._cache.add(cache, len(sequence.prompt_ids))

    def _step_all(self) -> None:
        ids = torch.tensor([[s.last_token] for s in self._running], dtype=torch.long, device=self.device)
        out = self.model(
            input_ids=ids,
            attention_mask=self._cache.attention_mask(self.device),
            position_ids=self._cache.positions(self.device),
            past_key_values=self._cache.cache,
            use_cache=True,
        )
        self._cache.grew()
        self.peak_batch = max(self.peak_batch, len(self._running))
        logits = out.logits[:, -1, :]
        samplers = [sequence.sampler for sequence in self._running]
        greedy = self._batch_argmax(logits, samplers)
        for row, (sequence, sampler) in enumerate(zip(self._running, samplers, strict=True)):
            token = sampler.take(greedy[row]) if sampler.batch_greedy else sampler.next_token(logits[row])
            self._advance(sequence, token)
        self._drop_ended()

    def _batch_argmax(self, logits: torch.Tensor, samplers: list[TokenSampler]) -> list[int] | None:
        """Every row's argmax in one device round trip, EOS masked for the rows that may not end yet."""
        if not any(s.batch_greedy for s in samplers):
            return None
        blocked = [row for row, s in enumerate(samplers) if s.batch_greedy and s.eos_blocked]
        if blocked and len(self._eos_index):
            logits = logits.clone()
            rows = torch.tensor(blocked, dtype=torch.long, device=logits.device)
            logits[rows.unsqueeze(1), self._eos_index.unsqueeze(0)] = float("-inf")
        return logits.argmax(dim=-1).tolist()

    def _abort_running(self, exc: Exception) -> None:
        """Fail every job of the batch and start from an empty one."""
        failed = [sequence for sequence in self._running if not sequence.finished]
        self._running, self._cache = [], LeftPaddedCache()
        self._fail(failed, exc)
        release_gpu_memory()

    def _drop_ended(self) -> None:
        keep = [row for row, s in enumerate(self._running) if not (s.finished or s.cancelled)]
        for sequence in self._running:
            if sequence.cancelled and not sequence.finished:
                log.info("generation cancelled after %d of %d tokens", sequence.sampler.generated,
                         sequence.max_tokens)
        if len(keep) != len(self._running):
            self._running = [self._running[row] for row in keep]
            self._cache.keep(keep)

    def _advance(self, sequence: _Sequence, token: int) -> None:
        sequence.last_token = token
        if sequence.sampler.is_eos(token):
            self._finish(sequence, "stop")
            return
        text, stopped = sequence.stops.feed(sequence.decoder.feed(token))
        if text:
            sequence.emit(text)
        if stopped:
            self._finish(sequence, "stop", flush=False)
        elif sequence.sampler.generated >= sequence.max_tokens:
            self._finish(sequence, "length")

    def _finish(self, sequence: _Sequence, reason: str, *, flush: bool = True) -> None:
        if flush:  # text held back for a possible multi-byte character or stop sequence
            text, stopped = sequence.stops.feed(sequence.decoder.flush())
            if stopped:
                reason = "stop"
            else:
                text += sequence.stops.flush()
            if text:
                sequence.emit(text)
        sequence.finished = True
        sequence.emit(Finish(reason, len(sequence.prompt_ids), sequence.sampler.generated))

    def _fail(self, sequences: list[_Sequence], exc: Exception) -> None:
        log.warning("generation failed for %d job(s)", len(sequences), exc_info=exc)
        # The traceback's frames hold the step's activations: drop them so the memory can be freed now.
        exc = exc.with_traceback(None)
        for sequence in sequences:
            sequence.finished = True
            sequence.emit(exc)

