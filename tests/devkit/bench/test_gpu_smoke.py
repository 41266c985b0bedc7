"""The GPU script's code path, on tiny configurations: it must stay runnable for the next lent machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_gpu_script_smoke_measures_every_figure(tmp_path, repo):
    out = tmp_path / "gpu.json"
    done = subprocess.run(
        [sys.executable, "-m", "devkit.bench.gpu", "--smoke", "--out", str(out)],
        cwd=repo, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=420,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {row["measure"]: row for row in json.loads(out.read_text())["rows"]}
    for measure in ("copy bandwidth (read + written)", "llm-hf worker, batch 1",
                    "llm-hf worker, 8 concurrent aggregate", "sdxl worker, 64x64 2 steps"):
        assert rows[measure]["value"] > 0, measure
    assert rows["llm-hf worker, 8 concurrent aggregate"]["ratio"] > 0
    # The cold-start phases of each worker against the floor's, from fresh processes (no runpod needed).
    for worker in ("llm-hf", "sdxl"):
        total = rows[f"cold start, {worker}: start to first job done"]
        assert total["value"] > 0 and total["baseline_name"] == "floor" and total["ratio"] > 0
        assert rows[f"cold start, {worker}: imports (all, lazy included)"]["baseline_name"] == "torch import"
        assert rows[f"cold start, {worker}: device init"]["baseline_name"] == "device init"
    assert all("FAILED" not in row["note"] for row in rows.values())
