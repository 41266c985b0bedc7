"""Cold start: import time is split by phase from -X importtime, and the floor probe runs for real."""

from __future__ import annotations

import os
import textwrap

from devkit.bench import cold_start
from devkit.bench.cold_start_probe import MARK

IMPORTTIME = textwrap.dedent(
    f"""\
    import time: self [us] | cumulative | imported package
    import time:     10000 |      10000 | site
    {MARK} imports
    import time:     20000 |      20000 |   numpy.core
    import time:     30000 |      50000 | numpy
    {MARK} model_load
    import time:     40000 |      40000 |     torch._dynamo
    import time:     60000 |     100000 | transformers
    {MARK} end
    """
)


def test_imports_are_counted_once_per_phase_and_by_package():
    per_phase, per_package = cold_start._imports_by_phase(IMPORTTIME)
    assert per_phase == {"interpreter": 0.01, "imports": 0.05, "model_load": 0.1}
    assert per_package == {"transformers": 0.06, "numpy": 0.05, "torch": 0.04, "site": 0.01}


def test_the_floor_probe_loads_every_weight_file(tiny_llm_dir):
    measured = cold_start.probe(["floor", str(tiny_llm_dir)], dict(os.environ))
    assert measured["files"] == 1 and measured["bytes"] > 0
    assert set(measured["phases_s"]) == {"interpreter", "imports", "cuda_init", "model_load"}
    assert measured["total_s"] > 0 and "torch" in measured["heaviest_imports_s"]
