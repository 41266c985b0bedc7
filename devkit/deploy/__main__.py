"""``python -m devkit.deploy [--worker NAME ...] [--dry-run]``: plan, print the difference, then apply.

Reads RUNPOD_API_KEY (required, never printed), REGISTRY and TAG (the image, when endpoint.toml
does not name one) and RUNPOD_REST_URL (default https://rest.runpod.io/v1). Exit status: 0 done (or
nothing to do), 1 RunPod refused or failed a call, 2 a configuration or account-state problem.
"""

from __future__ import annotations

import argparse
import sys

from devkit.client.errors import ClientError
from devkit.client.retry import RetryPolicy
from devkit.deploy.apply import apply
from devkit.deploy.plan import PlanError, make_plan
from devkit.deploy.rest import RunPodApi
from devkit.endpoint_config import ConfigError, for_worker, worker_names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devkit.deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="append", help="worker to deploy (repeatable); default: all")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    parser.add_argument("--registry", help="image registry prefix (default $REGISTRY)")
    parser.add_argument("--tag", help="image tag (default $TAG, else latest)")
    parser.add_argument("--api-url", help="RunPod REST API base (default $RUNPOD_REST_URL or the public API)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, *, retry: RetryPolicy | None = None) -> int:
    args = parse_args(argv)
    try:
        configs = [for_worker(name) for name in args.worker or worker_names()]
        images = {c.name: c.image_ref(args.registry, args.tag) for c in configs}
        with RunPodApi(base_url=args.api_url, retry=retry) as api:
            templates, endpoints = api.list_templates(), api.list_endpoints()
            plans = [make_plan(c, images[c.name], templates, endpoints) for c in configs]
            for plan in plans:
                print(plan.render())
            pending = [p for p in plans if p.has_changes]
            if not pending:
                print("No changes: the account matches the configuration.")
            elif args.dry_run:
                print(f"Dry run: {len(pending)} worker(s) would change; nothing was changed.")
            else:
                for plan in pending:
                    endpoint_id = apply(plan, api)
                    print(f"{plan.worker}: endpoint {endpoint_id} is up to date")
    except (ConfigError, PlanError) as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 2
    except ClientError as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
