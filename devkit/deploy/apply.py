"""Carry out a Plan against RunPod: template first (the endpoint needs its id), then the endpoint."""

from __future__ import annotations

from collections.abc import Callable

from devkit.deploy.api_models import EndpointCreateInput, EndpointUpdateInput, TemplateUpdateInput
from devkit.deploy.plan import Plan
from devkit.deploy.rest import RunPodApi


def apply(plan: Plan, api: RunPodApi, report: Callable[[str], None] = print) -> str:
    """Make the account match the plan; returns the endpoint id. Unchanged resources are not touched."""
    template_id = plan.template.id
    if plan.template.kind == "create":
        template_id = api.create_template(plan.wanted_template).id
        report(f"created template {plan.template.name!r} ({template_id})")
    elif plan.template.kind == "update":
        assert template_id is not None
        api.update_template(template_id, TemplateUpdateInput(**{c.key: c.new for c in plan.template.changes}))
        report(f"updated template {plan.template.name!r} ({template_id})")
    assert template_id is not None

    endpoint_id = plan.endpoint.id
    if plan.endpoint.kind == "create":
        endpoint_id = api.create_endpoint(EndpointCreateInput(template_id=template_id, **plan.wanted_endpoint)).id
        report(f"created endpoint {plan.endpoint.name!r} ({endpoint_id})")
    elif plan.endpoint.kind == "update":
        assert endpoint_id is not None
        fields = {c.key: c.new for c in plan.endpoint.changes}
        if "template_id" in fields:
            fields["template_id"] = template_id  # "(new template)" in the plan; real now
        api.update_endpoint(endpoint_id, EndpointUpdateInput(**fields))
        report(f"updated endpoint {plan.endpoint.name!r} ({endpoint_id})")
    assert endpoint_id is not None
    return endpoint_id
