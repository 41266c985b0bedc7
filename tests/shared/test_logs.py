"""shared.logs: the SDK's line shape with the job's requestId, one level for ours and the SDK's, bounded lines,
one traceback per failure."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from shared import logs
from shared.guard import guard

log = logging.getLogger("tests.worker")


class Output:
    """What `logs.configure` wrote, line by line."""

    def __init__(self):
        self.stream = io.StringIO()

    @property
    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture
def configure(monkeypatch):
    """``configure(**env)``: logs.configure() with these env vars (on an endpoint unless told), into an Output.
    The root logger and the SDK's logger class are restored afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    from runpod.serverless.modules.rp_logger import RunPodLogger

    monkeypatch.setattr(RunPodLogger, "log", RunPodLogger.log)  # undone after the test
    for name in (logs.LEVEL_ENV, logs.SDK_LEVEL_ENV, logs.ENDPOINT_ENV):
        monkeypatch.delenv(name, raising=False)

    def configured(**env: str) -> Output:
        env.setdefault(logs.ENDPOINT_ENV, "endpoint-1")
        for name, value in env.items():
            if value is not None:
                monkeypatch.setenv(name, value)
        output = Output()
        logs.configure(output.stream)
        return output

    yield configured
    root.handlers[:], _ = saved[0], root.setLevel(saved[1])


def run_job(handler, job_id: str = "job-1"):
    async def main():
        guarded = guard(handler)
        if inspect_is_async_gen(guarded):
            return [chunk async for chunk in guarded({"id": job_id, "input": {}})]
        return await guarded({"id": job_id, "input": {}})

    return asyncio.run(main())


def inspect_is_async_gen(function) -> bool:
    import inspect

    return inspect.isasyncgenfunction(function)


# --- shape and requestId --------------------------------------------------------------------------


def test_on_an_endpoint_a_line_is_the_sdks_json_object_without_a_request_outside_jobs(configure):
    output = configure()
    log.info("ready in %.1f s", 1.5)
    assert output.records() == [{"requestId": None, "message": "ready in 1.5 s", "level": "INFO"}]


def test_a_line_logged_inside_a_job_carries_its_request_id(configure):
    output = configure()

    async def handler(job):
        log.warning("inside")
        return {"ok": True}

    run_job(handler, "job-42")
    log.info("after")
    assert output.records() == [{"requestId": "job-42", "message": "inside", "level": "WARN"},
                                {"requestId": None, "message": "after", "level": "INFO"}]


def test_streaming_and_threaded_handlers_and_their_tasks_carry_the_request_id(configure):
    output = configure()

    async def streaming(job):
        yield {"chunk": 0}
        await asyncio.gather(asyncio.create_task(_log_soon("from a task")))
        yield {"chunk": 1}

    def threaded(job):
        log.info("from the handler's thread")
        return {"ok": True}

    run_job(streaming, "job-stream")
    run_job(threaded, "job-thread")
    assert [(r["requestId"], r["message"]) for r in output.records()] == [
        ("job-stream", "from a task"), ("job-thread", "from the handler's thread")]


async def _log_soon(message: str) -> None:
    await asyncio.sleep(0)
    log.info(message)


def test_off_an_endpoint_a_line_is_the_sdks_plain_shape(configure):
    output = configure(RUNPOD_ENDPOINT_ID=None)

    async def handler(job):
        log.error("broken")
        return {}

    run_job(handler, "job-7")
    log.info("idle")
    assert output.lines == ["ERROR  | job-7 | broken", "INFO   | idle"]


# --- one level ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("env", "shown"), [
    ({}, ["INFO", "WARN"]),
    ({"LOG_LEVEL": "warning"}, ["WARN"]),
    ({"LOG_LEVEL": "DEBUG"}, ["DEBUG", "INFO", "WARN"]),
    ({"RUNPOD_LOG_LEVEL": "WARN"}, ["WARN"]),
    ({"RUNPOD_LOG_LEVEL": "DEBUG", "LOG_LEVEL": "INFO"}, ["INFO", "WARN"]),
], ids=["default-info", "log-level", "debug", "sdk-variable-alone", "log-level-wins"])
def test_one_level_setting_governs_our_lines_and_the_sdks(configure, env, shown):
    output = configure(**env)
    from runpod.serverless.modules.rp_logger import RunPodLogger

    logs.adopt_sdk_logger(RunPodLogger)
    for level in (logging.DEBUG, logging.INFO, logging.WARNING):
        log.log(level, "ours")
    sdk = RunPodLogger()
    sdk.debug("sdk")
    sdk.info("sdk")
    sdk.warn("sdk")
    assert [(r["message"], r["level"]) for r in output.records()] == (
        [("ours", level) for level in shown] + [("sdk", level) for level in shown])


def test_an_unusable_level_logs_at_info_and_says_which_variable_is_wrong(configure):
    output = configure(LOG_LEVEL="loud")
    log.debug("hidden")
    [complaint] = output.records()
    assert complaint["level"] == "WARN" and "LOG_LEVEL='loud'" in complaint["message"]
    assert logging.getLogger().level == logging.INFO


def test_sdk_lines_carry_the_job_id_it_passes_or_the_running_job(configure):
    output = configure()
    from runpod.serverless.modules.rp_logger import RunPodLogger

    logs.adopt_sdk_logger(RunPodLogger)
    RunPodLogger().info("Started.", "job-sdk")

    async def handler(job):
        RunPodLogger().info("no id passed")
        return {}

    run_job(handler, "job-ctx")
    assert output.records() == [{"requestId": "job-sdk", "message": "Started.", "level": "INFO"},
                                {"requestId": "job-ctx", "message": "no id passed", "level": "INFO"}]


# --- bounded lines --------------------------------------------------------------------------------


@pytest.mark.parametrize("character", ["x", "é", "日", "\U0001f600"], ids=["ascii", "latin", "cjk", "astral"])
def test_a_huge_message_is_cut_in_the_middle_to_the_line_bound_with_a_marker(configure, character):
    output = configure()
    message = "HEAD" + character * 70_000 + "TAIL"
    log.warning(message)
    [line] = output.lines
    assert len(line.encode()) <= logs.MAX_LINE_BYTES
    text = json.loads(line)["message"]
    assert text.startswith("HEAD") and text.endswith("TAIL")
    cut = len(message) - len(text) + len(text[text.index(" ...["):text.index("]... ") + 5])
    assert f" ...[{cut} of {len(message)} characters cut]... " in text


def test_a_line_within_the_bound_is_left_whole(configure):
    output = configure()
    message = "y" * (logs.MAX_LINE_BYTES - 100)
    log.info(message)
    assert output.records()[0]["message"] == message


def test_the_sdks_lines_are_bounded_too(configure):
    output = configure()
    from runpod.serverless.modules.rp_logger import RunPodLogger

    logs.adopt_sdk_logger(RunPodLogger)
    RunPodLogger().error("\U0001f600" * 60_000, "job-1")
    [line] = output.lines
    assert len(line.encode()) <= logs.MAX_LINE_BYTES and "characters cut" in line


def test_plain_lines_are_bounded_and_a_lone_surrogate_does_not_break_the_write(configure):
    output = configure(RUNPOD_ENDPOINT_ID=None)
    log.info("bad \ud800 text " + "z" * 40_000)
    [line] = output.lines
    assert "\\ud800" in line and len(line.encode()) <= logs.MAX_LINE_BYTES


# --- one traceback per failure --------------------------------------------------------------------


class Boom(RuntimeError):
    pass


async def _raises(job):
    raise Boom("unexpected")


async def _raises_midway(job):
    yield {"chunk": 0}
    raise Boom("unexpected midway")


@pytest.mark.parametrize("handler", [_raises, _raises_midway], ids=["handler", "generator"])
def test_a_failing_job_through_the_sdks_runner_prints_its_traceback_once(configure, handler):
    """The SDK's own job runners (rp_job.run_job / run_job_generator) with the guarded handler, as the
    job loop runs them; at DEBUG the SDK logs every result too."""
    output = configure(LOG_LEVEL="DEBUG")
    from runpod.serverless.modules import rp_job
    from runpod.serverless.modules.rp_logger import RunPodLogger

    logs.adopt_sdk_logger(RunPodLogger)
    job = {"id": "job-fail", "input": {}}
    guarded = guard(handler)

    async def main():
        if inspect_is_async_gen(guarded):
            return [chunk async for chunk in rp_job.run_job_generator(guarded, job)]
        return await rp_job.run_job(guarded, job)

    result = asyncio.run(main())
    assert "INTERNAL" in json.dumps(result)
    text = output.stream.getvalue()
    assert text.count("Traceback (most recent call last)") == 1
    [failure] = [r for r in output.records() if "Traceback" in r["message"]]
    assert failure["requestId"] == "job-fail" and failure["level"] == "ERROR" and "Boom" in failure["message"]
