"""`python -m devkit.endpoint [--worker NAME ...] [--port N] [--host H]`: serve workers until Ctrl-C."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import signal
import sys
import threading

from devkit.endpoint import LocalEndpoint, StartupFailed
from devkit.endpoint_config import WORKERS_DIR, worker_names

DEFAULT_PORT = 8000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.endpoint",
        description="A local RunPod Serverless endpoint: the workers run through the runpod SDK's production job "
                    "loop, on their tiny fixture models, behind RunPod's API. Ctrl-C stops it.",
    )
    parser.add_argument("--worker", action="append", choices=worker_names(), metavar="NAME",
                        help=f"serve this worker (repeatable; default: all of {', '.join(worker_names())})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer <key>' from clients")
    return parser.parse_args(argv)


def curl_line(base_url: str, name: str, api_key: str | None) -> str:
    example = WORKERS_DIR / name / "test_input.json"
    body = json.dumps(json.loads(example.read_text())) if example.exists() else '{"input": {}}'
    auth = f" -H {shlex.quote(f'Authorization: Bearer {api_key}')}" if api_key else ""
    return (f"curl -s -X POST {base_url}/v2/{name}/runsync -H 'Content-Type: application/json'{auth} "
            f"-d {shlex.quote(body)}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    names = args.worker or worker_names()
    print(f"Preparing {', '.join(names)} (tiny models are built into .models/ on first use)...", flush=True)
    endpoint = LocalEndpoint(workers=names, port=args.port, host=args.host, api_key=args.api_key)
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
        for name in names:
            print(f"  {curl_line(endpoint.base_url, name, args.api_key)}")
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
