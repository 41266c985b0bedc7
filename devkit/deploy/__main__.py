"""``python -m devkit.deploy {deploy,status,undeploy}``: the RunPod endpoint lifecycle on REST API v2.

Reads RUNPOD_API_KEY (required, never printed), REGISTRY and TAG (the image, when endpoint.toml does
not name one) and RUNPOD_REST_URL (default https://api.runpod.io/v2). Exit status: 0 done (or nothing
to do), 1 RunPod refused or failed a call, 2 a configuration, fit or account-state problem (or an
undeploy that was not confirmed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from devkit.client.errors import ClientError
from devkit.client.retry import RetryPolicy
from devkit.deploy import fit, status
from devkit.deploy.apply import apply
from devkit.deploy.plan import PlanError, find_endpoint, make_plan
from devkit.deploy.rest import RunPodApi
from devkit.endpoint_config import ConfigError, EndpointConfig, for_worker, worker_names


class NotConfirmed(Exception):
    """undeploy was not confirmed."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devkit.deploy", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="{deploy,status,undeploy}")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--worker", action="append",
                         help="worker (repeatable); default: every workers/*/endpoint.toml")
        sub.add_argument("--api-url", help="RunPod REST v2 base URL (default $RUNPOD_REST_URL or https://api.runpod.io/v2)")
        return sub

    deploy = command("deploy", "Plan each worker's endpoint, print the plan, then apply it (idempotent).")
    deploy.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    deploy.add_argument("--force", action="store_true", help="skip the GPU-fit and disk checks (says so)")
    for sub in (deploy, command("status", "Show each worker's endpoint: state, workers, job URLs, image, GPU.")):
        sub.add_argument("--registry", help="image registry prefix (default $REGISTRY)")
        sub.add_argument("--tag", help="image tag (default $TAG, else dev)")
    undeploy = command("undeploy", "Delete each worker's endpoint (its workers stop, its jobs are cancelled).")
    undeploy.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, *, retry: RetryPolicy | None = None,
         ask: Callable[[str], str] | None = None) -> int:
    args = parse_args(argv)
    try:
        configs = [for_worker(name) for name in args.worker or worker_names()]
        with RunPodApi(base_url=args.api_url, retry=retry) as api:
            if args.command == "deploy":
                return deploy(args, configs, api)
            if args.command == "status":
                return show_status(args, configs, api)
            return undeploy(args, configs, api, ask or _ask)
    except (ConfigError, PlanError, fit.FitError) as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 2
    except NotConfirmed as exc:
        print(f"undeploy: {exc}", file=sys.stderr)
        return 2
    except ClientError as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 1


def deploy(args: argparse.Namespace, configs: list[EndpointConfig], api: RunPodApi) -> int:
    images = {c.name: c.image_ref(args.registry, args.tag) for c in configs}
    catalog = {gpu.id: gpu for gpu in api.list_gpu_types()}
    endpoints = api.list_endpoints()
    plans = [make_plan(c, images[c.name], catalog, endpoints) for c in configs]
    if args.force:
        print("GPU-fit check skipped (--force): nothing checked that the models fit the GPUs or the disks.")
    else:
        refusals = []
        for config in configs:
            try:
                passed, refused = fit.check(config, catalog)
            except fit.FitError as exc:
                passed, refused = [], [str(exc)]
            for line in passed:
                print(f"fit: {line}")
            refusals.extend(refused)
        if refusals:
            raise fit.FitError("GPU-fit check refused, nothing was created (change gpu.types, MAX_MODEL_LEN or "
                               "MAX_CONCURRENCY, or pass --force):" + "".join(f"\n  {r}" for r in refusals))
    for plan in plans:
        print(plan.render())
    pending = [p for p in plans if p.has_changes]
    if not pending:
        print("No changes: the account matches the configuration.")
    elif args.dry_run:
        print(f"Dry run: {len(pending)} endpoint(s) would change; nothing was changed.")
    else:
        for plan in pending:
            endpoint_id = apply(plan, api)
            print(f"{plan.worker}: endpoint {endpoint_id} {'created' if plan.kind == 'create' else 'updated'}")
    return 0


def show_status(args: argparse.Namespace, configs: list[EndpointConfig], api: RunPodApi) -> int:
    catalog = {gpu.id: gpu for gpu in api.list_gpu_types()}
    endpoints = api.list_endpoints()
    for config in configs:
        endpoint = find_endpoint(config.name, endpoints)
        if endpoint is None:
            print(f"{config.name}: not deployed (make deploy WORKER={config.name})")
            continue
        try:
            image = config.image_ref(args.registry, args.tag)
        except ConfigError:
            drift = None
        else:
            drift = tuple(c.key for c in make_plan(config, image, catalog, [endpoint]).changes)
        print(status.render(endpoint, api.list_workers(endpoint.id), catalog, drift))
    return 0


def undeploy(args: argparse.Namespace, configs: list[EndpointConfig], api: RunPodApi,
             ask: Callable[[str], str]) -> int:
    endpoints = api.list_endpoints()
    found = [(c.name, e) for c in configs if (e := find_endpoint(c.name, endpoints)) is not None]
    for config in configs:
        if all(name != config.name for name, _ in found):
            print(f"{config.name}: no endpoint, nothing to delete")
    if not found:
        return 0
    listing = ", ".join(f"{e.name!r} ({e.id})" for _, e in found)
    if not args.yes:
        answer = ask(f"Delete {listing}? Their workers stop and queued jobs are cancelled. Type 'yes': ")
        if answer.strip().lower() != "yes":
            raise NotConfirmed("not confirmed: nothing was deleted (YES=1 / --yes skips the question)")
    for name, endpoint in found:
        # v2 deleteEndpoint also deletes the endpoint's bound template: deploy creates nothing else.
        api.delete_endpoint(endpoint.id)
        print(f"{name}: endpoint {endpoint.id} deleted")
    return 0


def _ask(prompt: str) -> str:
    if not sys.stdin.isatty():
        raise NotConfirmed("stdin is not a terminal: pass --yes (make undeploy YES=1) to delete without asking")
    return input(prompt)


if __name__ == "__main__":
    sys.exit(main())
