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
        cwd=repo, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {row["measure"]: row for row in json.loads(out.read_text())["rows"]}
    for measure in ("copy bandwidth (read + written)", "llm-hf worker, batch 1",
                    "llm-hf worker, 8 concurrent aggregate", "sdxl worker, 64x64 2 steps"):
        assert rows[measure]["value"] > 0, measure
    assert rows["llm-hf worker, 8 concurrent aggregate"]["ratio"] > 0
    assert all("FAILED" not in row["note"] for row in rows.values())
