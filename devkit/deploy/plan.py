"""What deploy would change: the wanted template and endpoint of a worker, diffed against the account.

Resources are matched by name (the worker's name, for both). Only fields the configuration manages
are compared; an optional field left unset in endpoint.toml (network volume, registry credential) is
not managed, so a value set in the console stays. The plan is pure data: apply() carries it out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from devkit.deploy.api_models import Endpoint, EndpointCreateInput, Template, TemplateCreateInput
from devkit.endpoint_config import EndpointConfig

#: Suffix RunPod's console adds to the name of a FlashBoot endpoint; the endpoint is still ours.
_FLASHBOOT_SUFFIX = " -fb"


class PlanError(ValueError):
    """The account's state stops deploy (a name clash, duplicates); the message says what to fix."""


@dataclass(frozen=True)
class Change:
    key: str  # the request model's (snake_case) field name
    old: Any
    new: Any

    @property
    def api_field(self) -> str:
        return to_camel(self.key)


@dataclass(frozen=True)
class Action:
    resource: Literal["template", "endpoint"]
    kind: Literal["create", "update", "unchanged"]
    name: str
    id: str | None = None
    changes: tuple[Change, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    worker: str
    template: Action
    endpoint: Action
    wanted_template: TemplateCreateInput = field(repr=False)
    #: EndpointCreateInput minus templateId, which is only known once the template exists.
    wanted_endpoint: dict[str, Any] = field(repr=False)

    @property
    def has_changes(self) -> bool:
        return self.template.kind != "unchanged" or self.endpoint.kind != "unchanged"

    def render(self) -> str:
        lines = [f"{self.worker}:"]
        for action in (self.template, self.endpoint):
            mark = {"create": "+", "update": "~", "unchanged": "="}[action.kind]
            ident = f" ({action.id})" if action.id else ""
            lines.append(f"  {mark} {action.resource} {action.name!r}{ident}: {action.kind}")
            for change in action.changes:
                if action.kind == "create":
                    lines.append(f"      {change.api_field} = {_show(change.new)}")
                else:
                    lines.append(f"      {change.api_field}: {_show(change.old)} -> {_show(change.new)}")
            lines.extend(f"      note: {note}" for note in action.notes)
        return "\n".join(lines)


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def wanted_template(config: EndpointConfig, image: str) -> TemplateCreateInput:
    return TemplateCreateInput(
        name=config.name,
        image_name=image,
        is_serverless=True,
        container_disk_in_gb=config.container.disk_gb,
        container_registry_auth_id=config.container.registry_auth_id,
        env=dict(config.env),
        # The image's own CMD (`python -m <pkg>`) starts the worker: no override.
    )


def wanted_endpoint(config: EndpointConfig) -> dict[str, Any]:
    scaling = config.effective_scaling()
    fields = {
        "name": config.name,
        "gpu_type_ids": list(config.gpu.types),
        "gpu_count": config.gpu.count,
        "idle_timeout": scaling.idle_timeout,
        "execution_timeout_ms": scaling.execution_timeout * 1000,
        "flashboot": scaling.flashboot,
        "workers_min": scaling.min_workers,
        "workers_max": scaling.max_workers,
        "network_volume_id": config.container.network_volume_id,
    }
    # Validated now, with a placeholder id, so a bad value fails at plan time, not mid-apply.
    try:
        EndpointCreateInput(template_id="planned", **fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise PlanError(f"{config.name}: RunPod would refuse this endpoint: {problems}") from None
    return {k: v for k, v in fields.items() if v is not None}


def make_plan(config: EndpointConfig, image: str, templates: list[Template], endpoints: list[Endpoint]) -> Plan:
    template_body = wanted_template(config, image)
    endpoint_fields = wanted_endpoint(config)
    template = _one(config.name, [t for t in templates if t.name == config.name], "templates")
    endpoint = _one(config.name, [e for e in endpoints if _endpoint_name(e) == config.name], "endpoints")

    template_fields = template_body.model_dump(exclude_none=True, exclude={"name"})
    if template is None:
        template_action = Action("template", "create", config.name, changes=_all(template_fields))
    else:
        if template.is_serverless is False:
            raise PlanError(f"template {config.name!r} ({template.id}) is a Pod template: rename or delete it")
        template_fields.pop("is_serverless")  # create-only; checked above
        changes = _diff(template_fields, template)
        template_action = Action("template", "update" if changes else "unchanged", config.name, template.id,
                                 changes)

    wanted = dict(endpoint_fields)
    if template is not None:
        wanted["template_id"] = template.id
    if endpoint is None:
        endpoint_action = Action("endpoint", "create", config.name, changes=_all(wanted))
    else:
        notes: tuple[str, ...] = ()
        if endpoint.flashboot is None:
            wanted.pop("flashboot")
            notes = ("flashboot is not reported by the API: set at create time, not compared",)
        if template is None:
            wanted["template_id"] = "(new template)"
        changes = _diff(wanted, endpoint, exclude=frozenset({"name"}))
        endpoint_action = Action("endpoint", "update" if changes else "unchanged", config.name, endpoint.id,
                                 changes, notes)
    return Plan(config.name, template_action, endpoint_action, template_body, endpoint_fields)


def _endpoint_name(endpoint: Endpoint) -> str | None:
    return endpoint.name.removesuffix(_FLASHBOOT_SUFFIX) if endpoint.name else None


def _one(name: str, matches: list, kind: str):
    if len(matches) > 1:
        ids = ", ".join(m.id for m in matches)
        raise PlanError(f"{len(matches)} {kind} are named {name!r} ({ids}): delete or rename the extras")
    return matches[0] if matches else None


def _all(fields: dict[str, Any]) -> tuple[Change, ...]:
    return tuple(Change(k, None, v) for k, v in sorted(fields.items()))


def _diff(wanted: dict[str, Any], current: Template | Endpoint,
          exclude: frozenset[str] = frozenset()) -> tuple[Change, ...]:
    return tuple(
        Change(k, getattr(current, k), v)
        for k, v in sorted(wanted.items())
        if k not in exclude and getattr(current, k) != v
    )
