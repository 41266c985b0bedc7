"""`python -m devkit.endpoint` (what `make dev` runs): prints a working curl line, stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time

import httpx
import pytest

from devkit.endpoint.__main__ import curl_line

pytestmark = pytest.mark.e2e


#: The key the CLI test serves with: it must never show in anything the CLI prints.
KEY = "cli-test-key-never-printed"


def test_the_curl_line_posts_the_workers_test_input_to_runsync():
    line = curl_line("http://127.0.0.1:8000", "progress-demo", needs_key=True)
    args = shlex.split(line)
    assert args[:4] == ["curl", "-s", "-X", "POST"]
    assert "http://127.0.0.1:8000/v2/progress-demo/runsync" in args
    assert "Authorization: Bearer $RUNPOD_API_KEY" in args  # the shell fills it in
    assert args[-1] == '{"input": {"steps": 5, "step_seconds": 0.05}}'


def test_the_cli_serves_until_ctrl_c_then_stops_its_workers(repo, tmp_path):
    stderr = (tmp_path / "stderr").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "devkit.endpoint", "--worker", "progress-demo", "--port", "0"],
        cwd=repo, stdout=subprocess.PIPE, stderr=stderr, text=True, env={**os.environ, "RUNPOD_API_KEY": KEY},
    )
    try:
        printed, deadline = [], time.monotonic() + 120
        while not any(line.startswith("  curl ") for line in printed):
            assert time.monotonic() < deadline and process.poll() is None, printed
            printed.append(process.stdout.readline())
        assert any("progress-demo: a worker started fine" in line for line in printed)
        base_url = re.search(r"Local RunPod endpoint: (\S+)", "".join(printed)).group(1)
        # What the shell makes of the printed line: $RUNPOD_API_KEY expanded.
        args = shlex.split(next(line for line in printed if line.startswith("  curl ")).replace("$RUNPOD_API_KEY", KEY))
        url = args[args.index("-X") + 2]
        headers = dict(args[i + 1].split(": ", 1) for i, arg in enumerate(args) if arg == "-H")
        assert headers["Authorization"] == f"Bearer {KEY}"
        assert httpx.post(url, content=args[-1], timeout=60).status_code == 401
        body = httpx.post(url, content=args[-1], timeout=60, headers=headers).json()
        assert body["status"] == "COMPLETED"
        workers = _worker_pids(process.pid)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        rest = process.stdout.read()
        assert "Stopped." in rest
        stderr.seek(0)
        assert KEY not in "".join(printed) + rest + stderr.read()
        assert not any(_alive(pid) for pid in workers)
        with pytest.raises(httpx.ConnectError):
            httpx.get(base_url)
    finally:
        if process.poll() is None:
            process.kill()


def _worker_pids(parent: int) -> list[int]:
    """The parent's worker children (`python -m worker_progress_demo`); none once an idle worker has stopped."""
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(parent)], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "worker_progress_demo" in line]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
