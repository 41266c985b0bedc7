"""GPU benchmark for the lent device machine: one prepared run of at most 6 minutes, printing one table.

Realistic sizes with random weights built from real configurations (Llama-3.2-1B, SDXL base), saved
with the production ``save_pretrained`` layout and loaded by the workers' own ``setup()``:

- copy bandwidth (bytes read + written per second of a device-to-device copy);
- llm-hf batch 1 tokens/s against the memory-bandwidth roofline (copy bandwidth / weight bytes) and
  against the seed's handler; 8 concurrent requests' aggregate tokens/s against the seed in turn;
- sdxl seconds per image (1024x1024, 30 steps) through the worker against the seed's handler;
- cold start of llm-hf and sdxl: a fresh process to its first job done, per phase (imports, device init
  with CUDA's, weights, first job), each from a cold page cache, against the floor's phases (``import
  torch``, CUDA init, a raw safetensors load of the same files onto the GPU): devkit.bench.cold_start's
  probe, without the job loop's import (no runpod here).

Workers run in-process (their ``handler`` driven as the job loop would): the device machine has no
runpod/fastapi, and the job loop's own overhead is measured by ``make bench`` (dispatch).

Needs torch, transformers, tokenizers, safetensors, accelerate, plus diffusers and pydantic, which the
device machine lacks: carry them as wheels (docs/benchmarks.md). ``--smoke`` runs the same code path
with tiny configurations (any device, CPU included) in seconds.

    python3 -m devkit.bench.gpu [--smoke] [--out results.json] [--budget-s 330]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devkit.bench.jobs import IMAGE_PROMPT, completion_tokens, drain, llm_request
from shared.torch_errors import release_gpu_memory

REPO = Path(__file__).resolve().parents[2]
# Run from a bare checkout: no package of this repo is installed on the device machine.
for _path in (REPO / "workers" / "sdxl", REPO / "workers" / "llm-hf", REPO / "shared", REPO):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

CONCURRENT = 8


@dataclass(frozen=True)
class Sizes:
    llama: dict[str, Any]
    unet: dict[str, Any]
    text_encoder: dict[str, Any]
    text_encoder_2: dict[str, Any]
    vae: dict[str, Any]
    image: int
    steps: int
    batch1_tokens: int
    concurrent_tokens: int
    rounds: int


#: Llama-3.2-1B's configuration and SDXL base 1.0's, as published (weights random).
REAL = Sizes(
    llama=dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
               num_attention_heads=32, num_key_value_heads=8, head_dim=64, max_position_embeddings=131072,
               rms_norm_eps=1e-5, tie_word_embeddings=True,
               rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
                                "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                "original_max_position_embeddings": 8192}),
    unet=dict(sample_size=128, block_out_channels=(320, 640, 1280), layers_per_block=2,
              attention_head_dim=(5, 10, 20), transformer_layers_per_block=(1, 2, 10), norm_num_groups=32,
              cross_attention_dim=2048, addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816),
    text_encoder=dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                      num_attention_heads=12, projection_dim=768, hidden_act="quick_gelu"),
    text_encoder_2=dict(vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                        num_attention_heads=20, projection_dim=1280, hidden_act="gelu"),
    vae=dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, norm_num_groups=32, sample_size=1024),
    image=1024, steps=30, batch1_tokens=256, concurrent_tokens=128, rounds=2,
)

#: The same architectures with a handful of channels: checks the code path anywhere, in seconds.
SMOKE = Sizes(
    llama=dict(vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, head_dim=32, max_position_embeddings=512, tie_word_embeddings=True),
    unet=dict(sample_size=16, block_out_channels=(16, 32, 64), layers_per_block=1, attention_head_dim=(2, 2, 4),
              transformer_layers_per_block=(1, 1, 2), norm_num_groups=8, cross_attention_dim=64,
              addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 32),
    text_encoder=dict(vocab_size=600, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, projection_dim=32, hidden_act="quick_gelu"),
    text_encoder_2=dict(vocab_size=600, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, projection_dim=32, hidden_act="gelu"),
    vae=dict(block_out_channels=(8, 8, 16, 16), layers_per_block=1, norm_num_groups=8, sample_size=64),
    image=64, steps=2, batch1_tokens=16, concurrent_tokens=8, rounds=1,
)


@dataclass
class Report:
    """Rows of the table, written as they come so a run cut short still leaves what it measured."""

    budget_s: float
    out: Path | None
    started: float = field(default_factory=time.perf_counter)
    rows: list[dict[str, Any]] = field(default_factory=list)
    about: dict[str, Any] = field(default_factory=dict)

    def left_s(self) -> float:
        return self.budget_s - (time.perf_counter() - self.started)

    def add(self, measure: str, value: float | None, unit: str, baseline: float | None = None,
            baseline_name: str = "", ratio: float | None = None, note: str = "") -> None:
        row = {"measure": measure, "value": value, "unit": unit, "baseline": baseline,
               "baseline_name": baseline_name, "ratio": ratio, "note": note}
        self.rows.append(row)
        shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
        print(f"  {measure}: {shown} {unit}" + (f"  ({ratio:.2f}x {baseline_name})" if ratio else "")
              + (f"  [{note}]" if note else ""), flush=True)
        self.save()

    def save(self) -> None:
        if self.out:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.out.write_text(json.dumps({"about": self.about, "rows": self.rows}, indent=2) + "\n")

    def table(self) -> str:
        lines = [f"{'measure':58} {'value':>14} {'baseline':>22} {'ratio':>8}  note"]
        for r in self.rows:
            value = f"{r['value']:,.3f} {r['unit']}" if isinstance(r["value"], float) else str(r["value"])
            base = f"{r['baseline']:,.3f} ({r['baseline_name']})" if r["baseline"] is not None else ""
            ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else ""
            lines.append(f"{r['measure']:58} {value:>14} {base:>22} {ratio:>8}  {r['note']}")
        return "\n".join(lines)


def phase(report: Report, name: str, needs_s: float):
    """Run a phase unless the budget is too short for it; a failure is reported and the run goes on."""

    def wrap(fn):
        if report.left_s() < needs_s:
            report.add(name, None, "", note=f"skipped: {report.left_s():.0f} s left, needs ~{needs_s:.0f} s")
            return None
        print(f"--- {name} ({report.left_s():.0f} s left)", flush=True)
        try:
            return fn()
        except Exception as exc:
            traceback.print_exc()
            report.add(name, None, "", note=f"FAILED: {type(exc).__name__}: {str(exc)[:200]}")
            return None

    return wrap


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def copy_bandwidth(device: str, size_bytes: int) -> float:
    """Bytes read plus bytes written per second by a device-to-device copy (best of 10 after 3 warm-ups)."""
    import torch

    src = torch.empty(size_bytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    best = float("inf")
    for index in range(13):
        sync(device)
        started = time.perf_counter()
        dst.copy_(src)
        sync(device)
        if index >= 3:
            best = min(best, time.perf_counter() - started)
    del src, dst
    return 2 * size_bytes / best


def build_llama(out: Path, sizes: Sizes, device: str) -> Path:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from devkit.fixtures.llm import build_tokenizer

    tokenizer = build_tokenizer()  # a small byte-level BPE: ids stay below the real vocabulary size
    config = LlamaConfig(**sizes.llama, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16 if device == "cuda" else torch.float32)
    model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id,
                                               eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    del model
    release_gpu_memory()
    return out


def build_sdxl(out: Path, sizes: Sizes, device: str) -> Path:
    import torch
    from diffusers import AutoencoderKL, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from devkit.fixtures.sdxl import _scheduler, _tokenizer

    tokenizer = _tokenizer()
    ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
               pad_token_id=tokenizer.pad_token_id, max_position_embeddings=77)
    with torch.device(device):
        pipeline = StableDiffusionXLPipeline(
            vae=AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4,
                              down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                              scaling_factor=0.13025, force_upcast=True, **sizes.vae),
            text_encoder=CLIPTextModel(CLIPTextConfig(**sizes.text_encoder, **ids)),
            text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**sizes.text_encoder_2, **ids)),
            tokenizer=tokenizer,
            tokenizer_2=_tokenizer(),
            unet=UNet2DConditionModel(
                in_channels=4, out_channels=4, use_linear_projection=True, addition_embed_type="text_time",
                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), **sizes.unet),
            scheduler=_scheduler(),
        )
    # As the image bakes the real one: fp16 weights, the "fp16" variant.
    pipeline.to(torch.float16).save_pretrained(out, variant="fp16", safe_serialization=True)
    del pipeline
    release_gpu_memory()
    return out


def weight_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*.safetensors"))


def timed(fn) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def best_s(fn, rounds: int) -> float:
    """Seconds of the fastest of ``rounds`` calls of ``fn``."""
    return min(timed(fn)[1] for _ in range(rounds))


def run_job(handler, job_input: dict[str, Any], job_id: str = "bench") -> Any:
    """One job through a worker's handler, driven to the end as the job loop drives it."""
    return asyncio.run(drain(handler({"id": job_id, "input": job_input})))


def bench_llm(report: Report, model: Path, sizes: Sizes, bandwidth: float | None) -> None:
    n1, n8 = sizes.batch1_tokens, sizes.concurrent_tokens
    roofline = bandwidth / weight_bytes(model) if bandwidth else None
    if roofline:
        report.add("llm roofline, batch 1 (copy bandwidth / weight bytes)", roofline, "tok/s")

    seed1_tps, seed8_tps = seed_llm(report, model, sizes, roofline)
    release_gpu_memory()

    from worker_llm_hf.worker import LlmHf

    os.environ["MODEL_PATH"] = str(model)
    worker = LlmHf()
    report.add("llm-hf worker setup()", timed(worker.setup)[1], "s")
    try:
        run_job(worker.handler, llm_request(8))  # warm-up
        tps = n1 / best_s(lambda: completion_tokens(run_job(worker.handler, llm_request(n1))), sizes.rounds)
        report.add("llm-hf worker, batch 1", tps, "tok/s", roofline, "roofline", tps / roofline if roofline else None)
        report.add("llm-hf worker, batch 1 vs seed", tps, "tok/s", seed1_tps, "seed", tps / seed1_tps)

        async def concurrent() -> int:
            jobs = [drain(worker.handler({"id": f"bench-{i}", "input": llm_request(n8)})) for i in range(CONCURRENT)]
            return sum(completion_tokens(o) for o in await asyncio.gather(*jobs))

        asyncio.run(concurrent())  # warm-up at this batch size
        tokens, seconds = timed(lambda: asyncio.run(concurrent()))
        report.add(f"llm-hf worker, {CONCURRENT} concurrent aggregate", tokens / seconds, "tok/s", seed8_tps,
                   "seed in turn", tokens / seconds / seed8_tps)
    finally:
        worker.close()


def seed_llm(report: Report, model: Path, sizes: Sizes, roofline: float | None) -> tuple[float, float]:
    """The seed's batch-1 tokens/s and its tokens/s over 8 jobs in turn."""
    from devkit.bench.seed import SeedLlm

    n1, n8 = sizes.batch1_tokens, sizes.concurrent_tokens
    seed = SeedLlm(model)
    seed.handler({"input": llm_request(8)})  # warm-up
    batch1 = n1 / best_s(lambda: seed.handler({"input": llm_request(n1)}), sizes.rounds)
    report.add("llm seed, batch 1", batch1, "tok/s", roofline, "roofline", batch1 / roofline if roofline else None)
    in_turn = CONCURRENT * n8 / timed(lambda: [seed.handler({"input": llm_request(n8)}) for _ in range(CONCURRENT)])[1]
    report.add(f"llm seed, {CONCURRENT} in turn", in_turn, "tok/s")
    return batch1, in_turn


def bench_sdxl(report: Report, model: Path, sizes: Sizes) -> None:
    size, steps = sizes.image, sizes.steps
    seed_s = seed_sdxl(model, size, steps, sizes.rounds)
    report.add(f"sdxl seed, {size}x{size} {steps} steps", seed_s, "s/image")
    release_gpu_memory()

    from worker_sdxl.worker import SdxlWorker

    os.environ["MODEL_PATH"] = str(model)
    # Progress updates are posts by the job loop's SDK (absent here); in-process they go nowhere.
    worker = SdxlWorker(send_progress=lambda job, update: None)
    report.add("sdxl worker setup()", timed(worker.setup)[1], "s")
    job_input = {"prompt": IMAGE_PROMPT, "width": size, "height": size, "num_inference_steps": steps, "seed": 1,
                 "format": "png"}
    run_job(worker.handler, job_input)  # warm-up
    worker_s = best_s(lambda: run_job(worker.handler, job_input), sizes.rounds)
    report.add(f"sdxl worker, {size}x{size} {steps} steps", worker_s, "s/image", seed_s, "seed",
               seed_s / worker_s, note="ratio > 1: faster than the seed")


def seed_sdxl(model: Path, size: int, steps: int, rounds: int) -> float:
    from devkit.bench.seed import SeedSdxl

    seed = SeedSdxl(model)
    job = {"input": {"prompt": IMAGE_PROMPT, "width": size, "height": size, "steps": steps}}
    seed.handler(job)  # warm-up
    return best_s(lambda: seed.handler(job), rounds)


#: Worker -> (its package, the env var its setup() loads the model from).
COLD_START_WORKERS = {"llm-hf": ("worker_llm_hf", "MODEL_PATH"), "sdxl": ("worker_sdxl", "MODEL_PATH")}


def bench_cold_start(report: Report, worker: str, model: Path, job_input: dict[str, Any]) -> None:
    """Process start to first job done, per phase (imports, device init with CUDA's, weights, first job), in a
    fresh process from a cold page cache, against the floor's phases: ``import torch``, CUDA init and a raw
    safetensors load of the same files onto the device (devkit.bench.cold_start, its venv mode, minus the
    job loop's import: no runpod here)."""
    from devkit.bench import cold_start
    from devkit.bench.cold_start_probe import NO_JOB_LOOP

    package, folder_env = COLD_START_WORKERS[worker]
    paths = [str(REPO / "workers" / worker), str(REPO / "shared"), str(REPO), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), folder_env: str(model)}
    measured = {}
    for name, args in (("floor", ["floor", str(model)]),
                       ("worker", ["worker", package, json.dumps(job_input), NO_JOB_LOOP])):
        cold_start.evict([str(model)])
        measured[name] = cold_start.probe(args, env)
    report.about.setdefault("cold_start", {})[worker] = measured
    for figure in cold_start.figures(worker, measured):
        report.add(f"cold start, {figure.measure}", figure.value, figure.unit, figure.baseline,
                   figure.baseline_name or "", figure.ratio)


def describe(device: str) -> dict[str, Any]:
    import torch

    about = {"device": device, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        about.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                     multiprocessors=props.multi_processor_count)
    for name in ("transformers", "diffusers", "accelerate", "pydantic"):
        with contextlib.suppress(Exception):
            about[name] = __import__(name).__version__
    return about


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m devkit.bench.gpu", description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny configurations: the code path, not figures")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", REPO / ".bench")) / "gpu.json")
    parser.add_argument("--budget-s", type=float, default=330.0, help="stop starting phases after this (s)")
    parser.add_argument("--only", choices=("llm", "sdxl"), help="run one half")
    args = parser.parse_args(argv)

    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    sizes = SMOKE if args.smoke else REAL
    report = Report(args.budget_s, args.out)
    report.about = {**describe(device), "smoke": args.smoke}
    print(json.dumps(report.about), flush=True)

    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as scratch:
        scratch = Path(scratch)
        bandwidth = phase(report, "copy bandwidth", 5)(
            lambda: copy_bandwidth(device, (2 << 30) if device == "cuda" and not args.smoke else 64 << 20))
        if bandwidth:
            report.add("copy bandwidth (read + written)", bandwidth / 1e9, "GB/s")
        if args.only in (None, "llm"):
            llama = phase(report, "build Llama-3.2-1B-class model", 20)(
                lambda: build_llama(scratch / "llama", sizes, device))
            if llama:
                report.add("llama weights", weight_bytes(llama) / 1e9, "GB")
                phase(report, "llm-hf vs seed", 60)(lambda: bench_llm(report, llama, sizes, bandwidth))
                phase(report, "llm-hf cold start vs floor", 40)(
                    lambda: bench_cold_start(report, "llm-hf", llama, llm_request(8)))
        if args.only in (None, "sdxl"):
            sdxl = phase(report, "build SDXL-base-class pipeline", 40)(
                lambda: build_sdxl(scratch / "sdxl", sizes, device))
            if sdxl:
                phase(report, "sdxl vs seed", 60)(lambda: bench_sdxl(report, sdxl, sizes))
                first_image = {"prompt": IMAGE_PROMPT, "width": sizes.image, "height": sizes.image,
                               "num_inference_steps": min(sizes.steps, 4), "seed": 1}
                phase(report, "sdxl cold start vs floor", 40)(
                    lambda: bench_cold_start(report, "sdxl", sdxl, first_image))

    print()
    print(f"{report.about.get('gpu', device)} | torch {report.about['torch']} | smoke={args.smoke}")
    print(report.table())
    print(f"elapsed {time.perf_counter() - report.started:.0f} s; results: {args.out}")
    return 0 if all("FAILED" not in r["note"] for r in report.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
