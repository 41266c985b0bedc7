"""Choosing the next token of one sequence from its logits: penalties, EOS rules, greedy or seeded sampling.

Each sequence is sampled on its own (one row of the batch's logits, its own ``torch.Generator``), so its
tokens do not depend on which other sequences share the batch: that is what makes a seeded request
reproducible under load and a greedy one identical alone or batched.
"""

from __future__ import annotations

import torch

from shared.llm.inputs import Sampling

#: Temperatures below this are greedy. Dividing logits by a temperature near zero overflows them to
#: infinity (1e-39 did: "probability tensor contains either inf, nan"); the limit of sampling as the
#: temperature goes to 0 is the argmax anyway. vLLM uses the same cut (``_SAMPLING_EPS`` in
#: vllm/sampling_params.py), so both LLM workers agree on which requests are greedy.
GREEDY_BELOW = 1e-5


class TokenSampler:
    """Per-sequence sampling state: settings, the tokens seen so far (for the penalty), the RNG."""

    def __init__(self, sampling: Sampling, prompt_ids: list[int], eos_ids: frozenset[int], device: torch.device):
        self.sampling = sampling
        self.eos_ids = eos_ids
        self._eos_index = torch.tensor(sorted(eos_ids), dtype=torch.long, device=device)
        self._seen = torch.tensor(sorted(set(prompt_ids)), dtype=torch.long, device=device)
        self._generator = None
        if sampling.temperature >= GREEDY_BELOW:
            self._generator = torch.Generator(device=device)
            if sampling.seed is None:
                self._generator.seed()
            else:
                self._generator.manual_seed(sampling.seed)
        self.generated = 0

    @property
    def batch_greedy(self) -> bool:
        """The next token is the argmax of the logits (EOS masked while `eos_blocked`): the engine takes it for
        all such rows at once (one device sync per step instead of one per sequence)."""
        return self._generator is None and self.sampling.repetition_penalty == 1.0

    @property
    def eos_blocked(self) -> bool:
        return self.sampling.ignore_eos or self.generated < self.sampling.min_tokens

    def next_token(self, logits: torch.Tensor) -> int:
        """The next token id from this sequence's last-position logits (shape [vocab])."""
        scores = logits.float()
        scores = self._penalise_repeats(scores)
        if self.eos_blocked and len(self._eos_index):
            scores = scores.index_fill(0, self._eos_index, float("-inf"))
        return self.take(self._choose(scores))

    def take(self, token: int) -> int:
        """Record ``token`` as generated (chosen here, or by the engine for `batch_greedy` rows)."""
        self.generated += 1
        if self.sampling.repetition_penalty != 1.0:
            self._seen = torch.cat([self._seen, torch.tensor([token], device=self._seen.device)]).unique()
        return token

    def is_eos(self, token: int) -> bool:
        return token in self.eos_ids and not self.sampling.ignore_eos

    def _penalise_repeats(self, scores: torch.Tensor) -> torch.Tensor:
        penalty = self.sampling.repetition_penalty
        if penalty == 1.0 or not len(self._seen):
            return scores
        # Same rule as transformers' RepetitionPenaltyLogitsProcessor (and vLLM): shrink toward "less likely".
        # A penalty below float32's smallest normal number would round to 0 and make 0 / 0 = NaN; at that
        # size any penalty already sends a positive logit to +inf (see _overflow_dominates).
        penalty = max(penalty, torch.finfo(scores.dtype).tiny)
        seen = scores[self._seen]
        return scores.index_copy(0, self._seen, torch.where(seen < 0, seen * penalty, seen / penalty))

    def _choose(self, scores: torch.Tensor) -> int:
        if self._generator is None:  # temperature (near) 0: greedy
            return int(torch.argmax(scores))
        scores = _overflow_dominates(scores / self.sampling.temperature)
        if self.sampling.top_k:
            kth = torch.topk(scores, min(self.sampling.top_k, scores.numel())).values[-1]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if self.sampling.top_p < 1.0:
            scores = _nucleus(scores, self.sampling.top_p)
        probs = torch.softmax(scores, dim=-1)
        return int(torch.multinomial(probs, 1, generator=self._generator))


def _overflow_dominates(scores: torch.Tensor) -> torch.Tensor:
    """Scores that overflowed to +inf (large logits over a small temperature, or a tiny repetition penalty)
    dominate every finite one: the limit of the softmax is uniform over them, where softmax itself gives
    NaN (inf - inf). Finite scores pass unchanged."""
    overflowed = torch.isposinf(scores)
    if not bool(overflowed.any()):
        return scores
    return torch.zeros_like(scores).masked_fill(~overflowed, float("-inf"))


def _nucleus(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the most likely tokens whose probabilities sum to ``top_p`` (always at least one)."""
    ordered, order = torch.sort(scores, descending=True)
    cumulative = torch.softmax(ordered, dim=-1).cumsum(dim=-1)
    drop = cumulative - torch.softmax(ordered, dim=-1) >= top_p  # mass before this token already reaches top_p
    drop[0] = False
    return scores.index_fill(0, order[drop], float("-inf"))
