"""llm-hf under load: 8 concurrent requests through the worker, aggregate tokens/s, against the seed's
handler (one ``generate`` per job, jobs in turn) on the same model in the same run."""

from __future__ import annotations

from devkit.bench import through_endpoint
from devkit.bench.jobs import completion_tokens, llm_request
from devkit.bench.results import BenchResult, Target, faster
from devkit.bench.seed import SeedLlm
from devkit.bench.timing import interleaved

WORKER = "llm-hf"
CONCURRENT = 8
#: The issue's bar: aggregate tokens/s at 8 concurrent requests, as a multiple of the seed's.
TARGET_SPEEDUP = 3.0


def seed_round(model_path, jobs: int, max_tokens: int):
    """One round of the seed: ``jobs`` requests in turn, one generate each; returns the tokens made."""
    seed = SeedLlm(model_path)
    return lambda: sum(seed.handler({"input": llm_request(max_tokens)})["completion_tokens"] for _ in range(jobs))


def worker_round(client, jobs: int, max_tokens: int):
    """One round through the worker: ``jobs`` requests at once; returns the tokens made."""

    def one_round() -> int:
        outputs, _ = through_endpoint.concurrently(client, [llm_request(max_tokens)] * jobs)
        return sum(completion_tokens(o) for o in outputs)

    return one_round


def unavailable() -> str | None:
    return through_endpoint.unavailable(WORKER)


def run(quick: bool = False) -> BenchResult:
    from devkit.fixtures import for_worker

    max_tokens, rounds = (32, 1) if quick else (256, 3)
    with through_endpoint.warm_worker(WORKER, env={"MAX_CONCURRENCY": str(CONCURRENT)}) as client:
        measured = interleaved({"seed": seed_round(for_worker(WORKER), CONCURRENT, max_tokens),
                                "worker": worker_round(client, CONCURRENT, max_tokens)}, rounds)
    result = BenchResult("llm-hf", details={"requests": CONCURRENT, "max_tokens": max_tokens, **measured,
                                            "model": "tiny-llama fixture (fp32, CPU)"})
    result.figures = [
        faster(f"{CONCURRENT} concurrent, aggregate", measured["worker"]["per_s"], "tok/s",
               measured["seed"]["per_s"], "seed, in turn", Target("ratio", ">=", TARGET_SPEEDUP)),
    ]
    return result
