"""Command line: ``python -m devkit.client <endpoint> --input '{...}' [--stream | --async] [--base-url URL]``.

The result goes to stdout as JSON (one line per chunk with --stream); progress and errors go to
stderr. Exit status: 0 COMPLETED, 1 FAILED, 2 bad usage, 3 TIMED_OUT/CANCELLED/gave up waiting,
4 HTTP refusal (bad key, unknown endpoint, server unavailable) or unreachable server.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from devkit.client.client import DEFAULT_BASE_URL, Client, JobStatus
from devkit.client.errors import ApiError, JobCancelled, JobFailed, JobTimedOut, Unreachable, WaitTimeout


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devkit.client", description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", help="RunPod endpoint id, or the worker name on the local endpoint")
    parser.add_argument("--input", required=True, help="the job input, a JSON value")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--stream", action="store_true", help="print each chunk as the worker yields it")
    mode.add_argument("--async", dest="async_", action="store_true", help="/run, then poll /status with progress")
    parser.add_argument("--base-url", help=f"default $RUNPOD_ENDPOINT_BASE_URL or {DEFAULT_BASE_URL}")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the result (300)")
    args = parser.parse_args(argv)
    try:
        args.job_input = json.loads(args.input)
    except ValueError as exc:
        parser.error(f"--input is not JSON: {exc}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with Client(args.endpoint, base_url=args.base_url) as client:
        try:
            return _run(client, args)
        except JobFailed as exc:
            _report_failure(exc)
            return 1
        except (JobTimedOut, JobCancelled, WaitTimeout) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 3
        except (ApiError, Unreachable) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 4


def _run(client: Client, args: argparse.Namespace) -> int:
    if args.stream:
        job = client.run(args.job_input)
        print(f"job {job.id} queued", file=sys.stderr)
        for chunk in client.stream(job.id, timeout=args.timeout):
            _emit(chunk)
        return 0
    if args.async_:
        job = client.run(args.job_input)
        print(f"job {job.id} queued", file=sys.stderr)
        _emit(client.wait(job.id, timeout=args.timeout, on_progress=_progress))
        return 0
    _emit(client.runsync(args.job_input, timeout=args.timeout, on_progress=_progress))
    return 0


def _emit(value: Any) -> None:
    print(json.dumps(value), flush=True)


def _progress(job: JobStatus) -> None:
    detail = f" {json.dumps(job.output)[:200]}" if job.output is not None and not job.done else ""
    print(f"job {job.id}: {job.status}{detail}", file=sys.stderr, flush=True)


def _report_failure(exc: JobFailed) -> None:
    print(f"error: job {exc.job_id} FAILED: {exc.code or 'no code'}: {exc.message}", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem.field}: {problem.reason}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
