"""What deploy would change: each worker's wanted v2 endpoint, diffed against the account's endpoints.

v2 endpoints carry their container settings inline (image, disk, env, registry): there is no template
to create or keep in step. Endpoints are matched by name (the worker's name; RunPod's console adds
" -fb" to a FlashBoot endpoint's name, which is the same endpoint). Every field deploy manages is
compared; the plan is pure data and `apply` carries it out.

GPU types: endpoint.toml names GPU *types* (the catalog's ``id``, as pods take them); v2 endpoints
take serverless *pools* and subtract types with ``excludedTypes`` (createEndpoint: "pick the pool
that holds it and exclude the rest of that pool"). The wanted selection is the pools of the listed
types, minus every other type of those pools, so workers land only on the cards endpoint.toml names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from devkit import endpoint_config
from devkit.deploy.api_models import (
    CreateEndpointRequest,
    Endpoint,
    GpuType,
    UpdateEndpointRequest,
)
from devkit.endpoint_config import EndpointConfig, validation_problems

#: Suffix RunPod's console adds to the name of a FlashBoot endpoint; the endpoint is still ours.
_FLASHBOOT_SUFFIX = " -fb"
#: The fields deploy manages, in the order the plan prints them.
MANAGED = ("image", "disk", "env", "registry", "gpu", "workers", "scaling", "timeout", "flashboot",
           "dataCenterIds", "networkVolumes")


class PlanError(ValueError):
    """The configuration or the account's state stops deploy; the message says what to fix."""


@dataclass(frozen=True)
class Change:
    key: str  # v2's field name
    old: Any
    new: Any


@dataclass(frozen=True)
class Plan:
    worker: str
    kind: Literal["create", "update", "unchanged"]
    wanted: CreateEndpointRequest = field(repr=False)
    endpoint_id: str | None = None
    changes: tuple[Change, ...] = ()

    @property
    def has_changes(self) -> bool:
        return self.kind != "unchanged"

    def render(self) -> str:
        mark = {"create": "+", "update": "~", "unchanged": "="}[self.kind]
        ident = f" ({self.endpoint_id})" if self.endpoint_id else ""
        lines = [f"{mark} endpoint {self.worker!r}{ident}: {self.kind}"]
        for change in self.changes:
            if self.kind == "create":
                lines.append(f"    {change.key} = {_show(change.new)}")
            else:
                lines.append(f"    {change.key}: {_show(change.old)} -> {_show(change.new)}")
        return "\n".join(lines)

    def update_body(self) -> UpdateEndpointRequest:
        """PATCH body of the changed fields; gpu goes whole (pools without excludedTypes would clear them,
        and an unsent CUDA constraint would stay), as do workers and scaling."""
        body = self.wanted.model_dump(by_alias=True, exclude_unset=True)
        fields = {c.key: body.get(c.key) for c in self.changes}
        if "gpu" in fields:
            gpu = dict(body["gpu"])
            gpu.setdefault("excludedTypes", [])
            gpu.setdefault("allowedCudaVersions", [])
            gpu.setdefault("minCudaVersion", "")  # "" clears a floor the endpoint has
            fields["gpu"] = gpu
        return UpdateEndpointRequest.model_validate(fields)


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def gpu_selection(config: EndpointConfig, catalog: dict[str, GpuType]) -> tuple[list[str], list[str]]:
    """(pools, excludedTypes) that allow exactly ``gpu.types``."""
    where = f"{endpoint_config.WORKERS_DIR / config.name / 'endpoint.toml'}: gpu.types"
    unknown = [t for t in config.gpu.types if t not in catalog]
    if unknown:
        raise PlanError(f"{where}: not in RunPod's GPU catalog: {', '.join(unknown)}")
    no_pool = [t for t in config.gpu.types if catalog[t].pool is None]
    if no_pool:
        raise PlanError(f"{where}: not offered on serverless (no pool in the catalog): {', '.join(no_pool)}")
    pools = sorted({catalog[t].pool for t in config.gpu.types})  # type: ignore[misc]
    excluded = sorted(t.id for t in catalog.values() if t.pool in pools and t.id not in config.gpu.types)
    return pools, excluded


def wanted_endpoint(config: EndpointConfig, image: str, catalog: dict[str, GpuType]) -> CreateEndpointRequest:
    scaling = config.effective_scaling()
    pools, excluded = gpu_selection(config, catalog)
    gpu: dict[str, Any] = {"pools": pools, "count": config.gpu.count}
    if excluded:
        gpu["excludedTypes"] = excluded
    if config.gpu.allowed_cuda_versions:
        gpu["allowedCudaVersions"] = sorted(config.gpu.allowed_cuda_versions)
    elif (floor := config.min_cuda_version()) is not None:
        gpu["minCudaVersion"] = floor
    workers: dict[str, Any] = {"min": scaling.min_workers, "max": scaling.max_workers}
    if config.scaler.type == "QUEUE_DELAY":
        workers["idleTimeout"] = scaling.idle_timeout  # v2 refuses it with a REQUEST_COUNT queue scaler
        scaler: dict[str, Any] = {"type": "QUEUE_DELAY", "queueDelay": config.scaler.value}
    else:
        scaler = {"type": "REQUEST_COUNT", "requestCount": int(config.scaler.value)}
    body: dict[str, Any] = {
        "name": config.name,
        "type": "QUEUE",  # every worker here is a queue worker (the runpod SDK's job loop)
        "image": image,
        "disk": config.container.disk_gb,
        "env": dict(config.env),
        "gpu": gpu,
        "workers": workers,
        "scaling": scaler,
        "timeout": scaling.execution_timeout * 1000,
        "flashboot": "FLASHBOOT" if scaling.flashboot else "OFF",
        "dataCenterIds": list(config.placement.data_centers),
        "networkVolumes": list(config.placement.network_volumes),
    }
    if config.container.registry_auth_id:
        body["registry"] = config.container.registry_auth_id
    try:
        return CreateEndpointRequest.model_validate(body)
    except ValidationError as exc:  # caught here, before any call, rather than as a 422 mid-apply
        raise PlanError(f"{config.name}: RunPod v2 would refuse this endpoint: {validation_problems(exc)}") from None


def managed_fields(source: CreateEndpointRequest | Endpoint) -> dict[str, Any]:
    """The managed fields of a wanted body or of an endpoint, in one comparable form."""
    if isinstance(source, CreateEndpointRequest):
        data = source.model_dump(by_alias=True, exclude_unset=True)
    else:
        data = source.model_dump(by_alias=True, exclude={"request_urls"})
    gpu = data.get("gpu") or {}
    data["gpu"] = {
        "pools": sorted(gpu.get("pools") or []),
        "count": gpu.get("count", 1),
        "excludedTypes": sorted(gpu.get("excludedTypes") or []),
        "allowedCudaVersions": sorted(gpu.get("allowedCudaVersions") or []),
        "minCudaVersion": gpu.get("minCudaVersion") or None,
    }
    data["scaling"] = {k: v for k, v in data["scaling"].items() if v is not None}
    data["workers"] = {k: v for k, v in data["workers"].items() if v is not None}
    data.setdefault("registry", None)
    data["env"] = data.get("env") or {}
    return {key: data.get(key) for key in MANAGED}


def endpoint_name(endpoint: Endpoint) -> str:
    return endpoint.name.removesuffix(_FLASHBOOT_SUFFIX)


def find_endpoint(name: str, endpoints: list[Endpoint]) -> Endpoint | None:
    matches = [e for e in endpoints if endpoint_name(e) == name]
    if len(matches) > 1:
        ids = ", ".join(m.id for m in matches)
        raise PlanError(f"{len(matches)} endpoints are named {name!r} ({ids}): delete or rename the extras")
    return matches[0] if matches else None


def make_plan(config: EndpointConfig, image: str, catalog: dict[str, GpuType], endpoints: list[Endpoint]) -> Plan:
    wanted = wanted_endpoint(config, image, catalog)
    new = managed_fields(wanted)
    current = find_endpoint(config.name, endpoints)
    if current is None:
        return Plan(config.name, "create", wanted, changes=tuple(Change(k, None, new[k]) for k in MANAGED))
    if current.type not in (None, "QUEUE"):
        raise PlanError(f"endpoint {current.name!r} ({current.id}) is a {current.type} endpoint and v2 cannot "
                        "change an endpoint's type: rename or delete it")
    old = managed_fields(current)
    changes = tuple(Change(k, old[k], new[k]) for k in MANAGED if old[k] != new[k])
    return Plan(config.name, "update" if changes else "unchanged", wanted, current.id, changes)
