"""shared.job_loop: the event-driven JobScaler keeps the SDK's guarantees against a fake job API.

Worker processes run the real start path (``serve()`` -> ``runpod.serverless.start``) in production
mode, pointed by RunPod's env vars at a small fake of RunPod's worker-facing job API on 127.0.0.1.
The fake checks on every take that the worker asks for no more jobs than it has free slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from shared import job_loop

#: Seconds the fake holds an empty take or stop poll open (RunPod long-polls both).
HOLD_S = 0.5

WORKER_SOURCE = textwrap.dedent(
    """
    import asyncio
    from shared.serving import serve

    class Fixture:
        max_concurrency = 1

        def setup(self):
            pass

        async def handler(self, job):
            await asyncio.sleep(job["input"].get("sleep", 0))
            for index in range(job["input"].get("chunks", 1)):
                yield {"chunk": index}

    if __name__ == "__main__":
        serve(Fixture())
    """
)


class FakeJobApi:
    """RunPod's job-take / job-stop / job-done / job-stream / ping endpoints, on its own thread."""

    def __init__(self, limit: int):
        self.limit = limit
        self.lock = threading.Lock()
        self.pending: deque[dict[str, Any]] = deque()
        self.in_flight: set[str] = set()
        self.max_in_flight = 0
        self.results: dict[str, dict[str, Any]] = {}
        self.result_kinds: dict[str, str] = {}
        self.chunks: dict[str, list[Any]] = {}
        self.takes: list[tuple[int, int]] = []  # (jobs asked for, jobs in flight at the time)
        self.violations: list[str] = []
        self.to_stop: list[str] = []
        self.pings: list[dict[str, str]] = []
        self._loop = asyncio.new_event_loop()
        self._changed = asyncio.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "fake job API did not start"

    # --- test side -------------------------------------------------------------------------

    def env(self, pod_id: str) -> dict[str, str]:
        base = f"http://127.0.0.1:{self.port}"
        return {
            "RUNPOD_WEBHOOK_GET_JOB": f"{base}/job-take/$ID?gpu=test",
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/job-done/$RUNPOD_POD_ID/$ID?gpu=test",
            "RUNPOD_WEBHOOK_POST_STREAM": f"{base}/job-stream/$RUNPOD_POD_ID/$ID?gpu=test",
            "RUNPOD_WEBHOOK_PING": f"{base}/ping/$RUNPOD_POD_ID?gpu=test",
            "RUNPOD_PING_INTERVAL": "1000",
            "RUNPOD_AI_API_KEY": "test-key",
            "RUNPOD_POD_ID": pod_id,
        }

    def submit(self, job_input: dict[str, Any]) -> str:
        job_id = f"job-{uuid.uuid4().hex[:8]}"
        with self.lock:
            self.pending.append({"id": job_id, "input": job_input})
        self._wake()
        return job_id

    def stop(self, job_id: str) -> None:
        with self.lock:
            self.to_stop.append(job_id)
        self._wake()

    def wait_for(self, predicate, timeout: float = 30, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate(self):
                    return
            time.sleep(0.02)
        pytest.fail(f"timed out waiting for {what}")

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # --- server side -----------------------------------------------------------------------

    def _wake(self) -> None:
        self._loop.call_soon_threadsafe(self._changed.set)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/job-take/{pod}", self._take)
        app.router.add_get("/job-take-batch/{pod}", self._take)
        app.router.add_get("/job-stop/{pod}", self._stop_poll)
        app.router.add_post("/job-done/{pod}/{job}", self._done)
        app.router.add_post("/job-stream/{pod}/{job}", self._stream)
        app.router.add_get("/ping/{pod}", self._ping)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    async def _long_poll(self, ready) -> Any:
        deadline = self._loop.time() + HOLD_S
        while True:
            with self.lock:
                found = ready()
            if found:
                return found
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                return None
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def _take(self, request: web.Request) -> web.Response:
        batch = "batch_size" in request.query
        asked = int(request.query.get("batch_size", 1))
        with self.lock:
            self.takes.append((asked, len(self.in_flight)))
            if len(self.in_flight) + asked > self.limit:
                self.violations.append(f"asked for {asked} with {len(self.in_flight)} of {self.limit} busy")

        def pop():
            jobs = []
            while self.pending and len(jobs) < asked:
                job = self.pending.popleft()
                self.in_flight.add(job["id"])
                jobs.append(job)
            self.max_in_flight = max(self.max_in_flight, len(self.in_flight))
            return jobs

        jobs = await self._long_poll(pop)
        if not jobs:
            return web.Response(status=204)
        return web.json_response(jobs if batch else jobs[0])

    async def _stop_poll(self, request: web.Request) -> web.Response:
        def pop():
            ids, self.to_stop[:] = list(self.to_stop), []
            self.in_flight.difference_update(ids)
            return ids

        ids = await self._long_poll(pop)
        if not ids:
            return web.Response(status=204)
        return web.json_response({"jobsToStop": ids})

    async def _done(self, request: web.Request) -> web.Response:
        body = json.loads(await request.text())
        job_id = request.match_info["job"]
        with self.lock:
            self.results[job_id] = body
            self.result_kinds[job_id] = request.query["isStream"]
            self.in_flight.discard(job_id)
        self._changed.set()
        return web.Response(text="ok")

    async def _stream(self, request: web.Request) -> web.Response:
        body = json.loads(await request.text())
        with self.lock:
            self.chunks.setdefault(request.match_info["job"], []).append(body["output"])
        return web.Response(text="ok")

    async def _ping(self, request: web.Request) -> web.Response:
        with self.lock:
            self.pings.append(dict(request.query))
        return web.Response(text="ok")


class WorkerProcess:
    def __init__(self, api: FakeJobApi, package_dir: Path, concurrency: int, loop: str = "event"):
        env = {
            **os.environ,
            **api.env(pod_id=f"pod-{uuid.uuid4().hex[:6]}"),
            "PYTHONPATH": os.pathsep.join([str(package_dir), os.environ.get("PYTHONPATH", "")]),
            "MAX_CONCURRENCY": str(concurrency),
            job_loop.LOOP_ENV: loop,
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
            "RUNPOD_SKIP_GPU_CHECK": "true",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "loop_fixture_worker"], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )

    def terminate_and_wait(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def log(self) -> str:
        if self.process.poll() is None:
            self.process.kill()
        return self.process.communicate(timeout=10)[0]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("loop-worker")
    (root / "loop_fixture_worker").mkdir()
    (root / "loop_fixture_worker" / "__init__.py").write_text("")
    (root / "loop_fixture_worker" / "__main__.py").write_text(WORKER_SOURCE)
    return root


@pytest.fixture(scope="module")
def shared_api():
    api = FakeJobApi(limit=3)
    yield api
    api.close()


@pytest.fixture(scope="module")
def worker_of_three(shared_api, package_dir):
    """One worker at concurrency 3 for the tests that do not end it."""
    worker = WorkerProcess(shared_api, package_dir, concurrency=3)
    yield worker
    worker.kill()


@pytest.fixture
def api_of(request):
    apis = []

    def make(limit: int) -> FakeJobApi:
        apis.append(FakeJobApi(limit))
        return apis[-1]

    yield make
    for api in apis:
        api.close()


def all_done(ids):
    return lambda api: all(i in api.results for i in ids)


def test_runpod_is_the_release_the_loop_was_built_for():
    import runpod

    assert runpod.__version__ == job_loop.PINNED_RUNPOD_VERSION


def test_start_swaps_in_the_event_loop_only_while_the_sdk_starts(monkeypatch):
    import runpod
    from runpod.serverless import worker as sdk_worker

    stock = sdk_worker.run_worker
    seen = []
    monkeypatch.delenv(job_loop.LOOP_ENV, raising=False)
    monkeypatch.setattr(runpod.serverless, "start", lambda config: seen.append(sdk_worker.run_worker))
    job_loop.start({})
    assert seen == [job_loop.run_worker]
    assert sdk_worker.run_worker is stock


def test_sdk_loop_is_selectable_and_bad_choices_are_refused(monkeypatch):
    monkeypatch.setenv(job_loop.LOOP_ENV, "sdk")
    assert job_loop.use_event_loop() is False
    monkeypatch.setenv(job_loop.LOOP_ENV, "fast")
    with pytest.raises(ValueError, match=job_loop.LOOP_ENV):
        job_loop.use_event_loop()


def test_concurrency_limit_is_honoured_and_takes_never_exceed_free_slots(shared_api, worker_of_three):
    ids = [shared_api.submit({"sleep": 0.3}) for _ in range(10)]
    shared_api.wait_for(all_done(ids), what="10 results")
    assert shared_api.max_in_flight == 3
    assert shared_api.violations == []
    assert any(asked > 1 for asked, _ in shared_api.takes), "free slots are filled with batch takes"
    assert all(shared_api.results[i] == {"output": [{"chunk": 0}]} for i in ids)


def test_streamed_chunks_are_posted_one_by_one_then_the_aggregate(shared_api, worker_of_three):
    job_id = shared_api.submit({"chunks": 3})
    shared_api.wait_for(all_done([job_id]), what="the streamed job")
    assert shared_api.chunks[job_id] == [{"chunk": 0}, {"chunk": 1}, {"chunk": 2}]
    assert shared_api.results[job_id] == {"output": [{"chunk": 0}, {"chunk": 1}, {"chunk": 2}]}
    assert shared_api.result_kinds[job_id] == "true"


def test_a_stopped_job_is_cancelled_without_a_result_and_frees_its_slot(shared_api, worker_of_three):
    long_job = shared_api.submit({"sleep": 120})
    shared_api.wait_for(lambda api: long_job in api.in_flight, what="the long job to be taken")
    shared_api.stop(long_job)
    shared_api.max_in_flight = 0
    ids = [shared_api.submit({"sleep": 0.5}) for _ in range(3)]
    shared_api.wait_for(all_done(ids), what="the jobs after the stop")
    assert long_job not in shared_api.results
    assert shared_api.max_in_flight == 3  # all three slots, the stopped job's included
    assert shared_api.violations == []


def test_pings_report_the_jobs_in_progress(shared_api, worker_of_three):
    job_id = shared_api.submit({"sleep": 2.5})
    shared_api.wait_for(lambda api: any(p.get("job_id") == job_id for p in api.pings), what="a ping naming the job")
    assert all(p["runpod_version"] == job_loop.PINNED_RUNPOD_VERSION for p in shared_api.pings)
    shared_api.wait_for(all_done([job_id]), what="the pinged job")


def test_sigterm_drains_jobs_in_flight_takes_no_more_and_exits_zero(api_of, package_dir):
    api = api_of(limit=2)
    worker = WorkerProcess(api, package_dir, concurrency=2)
    try:
        ids = [api.submit({"sleep": 1.5}) for _ in range(2)]
        api.wait_for(lambda a: set(ids) <= a.in_flight, what="both jobs to be taken")
        assert worker.terminate_and_wait() == 0, worker.log()
        late = api.submit({"sleep": 0})
        time.sleep(HOLD_S)
        with api.lock:
            assert all(i in api.results for i in ids), worker.log()
            assert late not in api.in_flight and late not in api.results
    finally:
        worker.kill()


def test_idle_worker_exits_zero_on_sigterm(api_of, package_dir):
    api = api_of(limit=1)
    worker = WorkerProcess(api, package_dir, concurrency=1)
    try:
        api.wait_for(lambda a: len(a.takes) >= 2, what="the worker to poll for jobs")
        assert worker.terminate_and_wait(timeout=15) == 0, worker.log()
    finally:
        worker.kill()


@pytest.mark.parametrize("loop", ["event", "sdk"])
def test_at_concurrency_one_each_job_is_taken_only_after_the_last_one_ended(api_of, package_dir, loop):
    api = api_of(limit=1)
    worker = WorkerProcess(api, package_dir, concurrency=1, loop=loop)
    try:
        ids = [api.submit({"chunks": 2}) for _ in range(3)]
        api.wait_for(all_done(ids), what=f"jobs through the {loop} loop")
        assert api.violations == [] and api.max_in_flight == 1
        assert all(asked == 1 for asked, _ in api.takes)
        assert all(api.results[i] == {"output": [{"chunk": 0}, {"chunk": 1}]} for i in ids)
    finally:
        worker.kill()


def test_importing_the_loop_skips_the_cpu_probe_and_restores_it():
    done = subprocess.run(
        [sys.executable, "-c", "import cpuinfo; probe = cpuinfo.get_cpu_info; from shared import job_loop;"
         "from runpod.serverless.utils import rp_debugger;"
         "print(cpuinfo.get_cpu_info is probe, rp_debugger.PROCESSOR == job_loop._cpu_brand())"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert done.stdout.split() == ["True", "True"]
