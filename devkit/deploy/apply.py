"""Carry out a Plan against RunPod v2: create the endpoint, or PATCH only the fields that differ."""

from __future__ import annotations

from devkit.deploy.plan import Plan
from devkit.deploy.rest import RunPodApi


def apply(plan: Plan, api: RunPodApi) -> str:
    """Make the account match the plan; returns the endpoint id. An unchanged endpoint is not touched.

    A changed image (or env) is a PATCH too: v2 makes it a new release that rolls out as workers cycle
    (updateEndpoint), so changing the image tag rolls the endpoint to the new image.
    """
    if plan.kind == "create":
        return api.create_endpoint(plan.wanted).id
    assert plan.endpoint_id is not None
    if plan.kind == "update":
        api.update_endpoint(plan.endpoint_id, plan.update_body())
    return plan.endpoint_id
