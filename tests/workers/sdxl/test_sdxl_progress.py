"""StepProgress: throttling of per-step updates."""

from __future__ import annotations

from worker_sdxl.progress import StepProgress


def test_updates_are_throttled_but_each_stage_start_and_end_are_sent():
    sent = []
    progress = StepProgress({"id": "j"}, lambda job, update: sent.append(update["step"]), interval_s=3600)
    for step in range(1, 11):
        progress("base", step, 10)
    assert sent == [1, 10]


def test_zero_interval_sends_every_step():
    sent = []
    progress = StepProgress({"id": "j"}, lambda job, update: sent.append((job["id"], update)), interval_s=0)
    for step in (1, 2, 3):
        progress("refiner", step, 3)
    assert [update["step"] for _, update in sent] == [1, 2, 3]
    assert sent[-1] == ("j", {"stage": "refiner", "step": 3, "steps": 3, "progress": 1.0})
