"""`python -m devkit.endpoint [--worker NAME ...] [--port N] [--host H]`: serve workers until Ctrl-C.

The API key clients must send comes from ``RUNPOD_API_KEY`` (the variable RunPod's own docs and clients
read, so a client written for RunPod works here unchanged); ``--api-key`` still works but shows in ``ps``
and shell history, so it warns. The key is never printed: the curl lines say ``$RUNPOD_API_KEY``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import sys
import threading

from devkit.endpoint import LocalEndpoint, StartupFailed
from devkit.endpoint.page import example_input
from devkit.endpoint.spec import API_KEY_ENV
from devkit.manifest import endpoint_ids

DEFAULT_PORT = 8000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.endpoint",
        description="A local RunPod Serverless endpoint: the workers run through the runpod SDK's production job "
                    "loop, on their tiny fixture models, behind RunPod's API. Ctrl-C stops it.",
    )
    parser.add_argument("--worker", action="append", choices=endpoint_ids(), metavar="NAME",
                        help=f"serve this worker, or a worker.toml variant <worker>-<variant> (repeatable; "
                             f"default: all of {', '.join(endpoint_ids())})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--api-key", default=None,
                        help=f"require 'Authorization: Bearer <key>' from clients (prefer ${API_KEY_ENV}: "
                             "a command-line key shows in ps and shell history)")
    return parser.parse_args(argv)


def api_key_of(args: argparse.Namespace, environ: dict[str, str]) -> str | None:
    """The key clients must send: ``--api-key`` (with a warning), else ``$RUNPOD_API_KEY``, else none."""
    if args.api_key:
        print(f"Warning: --api-key shows in ps and shell history; set {API_KEY_ENV} in the environment instead.",
              file=sys.stderr, flush=True)
        return args.api_key
    return environ.get(API_KEY_ENV, "").strip() or None


def curl_line(base_url: str, name: str, needs_key: bool) -> str:
    """A curl line that runs the worker's test input; the key is the shell's ``$RUNPOD_API_KEY``, never printed."""
    example = example_input(name)
    body = json.dumps({"input": example if example is not None else {}})
    auth = f' -H "Authorization: Bearer ${API_KEY_ENV}"' if needs_key else ""
    return (f"curl -s -X POST {base_url}/v2/{name}/runsync -H 'Content-Type: application/json'{auth} "
            f"-d {shlex.quote(body)}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    names = args.worker or endpoint_ids()
    api_key = api_key_of(args, dict(os.environ))
    print(f"Preparing {', '.join(names)} (tiny models are built into .models/ on first use)...", flush=True)
    endpoint = LocalEndpoint(workers=names, port=args.port, host=args.host, api_key=api_key)
    stop = threading.Event()
    # SIGTERM (e.g. from a process manager) stops as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        endpoint.start()
    except OSError as exc:
        print(f"Cannot listen on {args.host}:{args.port}: {exc.strerror} (choose another: make dev PORT=<n>, "
              "or --port 0 for any free port)", file=sys.stderr)
        return 1
    try:
        print(f"\nLocal RunPod endpoint: {endpoint.base_url}", flush=True)
        for name in names:
            print(f"  {name}: {endpoint.base_url}/v2/{name}  (OpenAI: {endpoint.base_url}/v2/{name}/openai/v1)")
        for name in names:  # one cold start each, so a broken worker shows now and not on the first request
            try:
                endpoint.wait_ready(name, timeout=600)
                print(f"  {name}: a worker started fine", flush=True)
            except (StartupFailed, TimeoutError) as exc:
                print(f"  {name}: WORKER CANNOT START: {exc}", flush=True)
        print("\nTry:", flush=True)
        if api_key:
            print(f"  (clients must send the API key; the lines below read it from ${API_KEY_ENV})", flush=True)
        for name in names:
            print(f"  {curl_line(endpoint.base_url, name, api_key is not None)}")
        print("\nWorkers scale as in workers/<name>/endpoint.toml. Ctrl-C stops everything.", flush=True)
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        print("\nStopping workers...", flush=True)
        endpoint.stop()
        print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
