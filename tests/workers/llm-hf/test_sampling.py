"""Sampling stays finite for every setting inside the documented bounds (issue 19: a tiny temperature or
repetition penalty made the probabilities NaN and the job fail INTERNAL)."""

from __future__ import annotations

import pytest
import torch

from shared.llm.inputs import Sampling
from worker_llm_hf.sampling import GREEDY_BELOW, TokenSampler

VOCAB = 32
EOS = frozenset({0})


def sampler(prompt_ids=(3, 5), **fields) -> TokenSampler:
    return TokenSampler(Sampling(seed=7, **fields), list(prompt_ids), EOS, torch.device("cpu"))


@pytest.mark.parametrize("temperature", [1e-39, 5e-324, GREEDY_BELOW / 2])
def test_a_temperature_near_zero_is_greedy(temperature):
    chosen = sampler(temperature=temperature, top_p=0.5, top_k=4)
    assert chosen.batch_greedy
    assert chosen.next_token(torch.arange(VOCAB, dtype=torch.float32)) == VOCAB - 1


@pytest.mark.parametrize("penalty", [1e-45, 1e-300, 5e-324])
@pytest.mark.parametrize("temperature", [0.0, GREEDY_BELOW, 1.0, 2.0])
@pytest.mark.parametrize(("top_p", "top_k"), [(1.0, 0), (1e-9, 0), (0.5, 3), (1.0, 100_000)])
def test_a_tiny_repetition_penalty_keeps_sampling_finite(penalty, temperature, top_p, top_k):
    """Every seen positive logit overflows to +inf: the choice falls among them, never a NaN error."""
    chosen = sampler(prompt_ids=(4, 20, 25), temperature=temperature, top_p=top_p, top_k=top_k,
                     repetition_penalty=penalty)
    logits = torch.linspace(-3.0, 3.0, VOCAB)
    logits[4] = 0.0  # 0 / a penalty that rounds to 0 in float32 was NaN
    for _ in range(5):
        assert chosen.next_token(logits) in {20, 25}  # seen tokens with positive logits, divided by ~0


@pytest.mark.parametrize("temperature", [GREEDY_BELOW, 1e-3, 1.0])
def test_logits_that_overflow_when_scaled_are_sampled_among_the_largest(temperature):
    logits = torch.full((VOCAB,), -1.0)
    logits[[7, 9]] = 3e38  # over float32's range once divided by any temperature < 1
    chosen = sampler(temperature=temperature, prompt_ids=())
    assert {chosen.next_token(logits) for _ in range(20)} <= {7, 9}


def test_the_worker_answers_a_tiny_temperature_as_greedy(run, greedy):
    [reference] = run(greedy(prompt="Hello", max_tokens=8))
    [tiny] = run(greedy(prompt="Hello", max_tokens=8, temperature=1e-39, seed=1))
    assert tiny["text"] == reference["text"]


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_the_worker_answers_a_tiny_repetition_penalty(run, temperature):
    [result] = run({"prompt": "Hello", "max_tokens": 8, "ignore_eos": True, "temperature": temperature,
                    "repetition_penalty": 1e-45, "top_p": 0.9, "top_k": 5, "seed": 3})
    assert result["usage"]["completion_tokens"] == 8
