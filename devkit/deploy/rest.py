"""The calls deploy makes to RunPod's REST API v1, typed with api_models; errors are devkit.client's.

The API key travels only in the Authorization header; it is never logged, printed or kept in a repr,
and is scrubbed from any error text the server echoes.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from devkit.client.errors import ClientError, api_error
from devkit.client.retry import RetryPolicy, send_with_retries
from devkit.deploy.api_models import (
    Endpoint,
    EndpointCreateInput,
    EndpointUpdateInput,
    Template,
    TemplateCreateInput,
    TemplateUpdateInput,
)

DEFAULT_REST_URL = "https://rest.runpod.io/v1"


class MissingApiKey(ClientError):
    def __init__(self) -> None:
        super().__init__("RUNPOD_API_KEY is not set: create a key in the RunPod console (Settings > API Keys) "
                         "and export it; it is read from the environment only")


class RunPodApi:
    def __init__(self, api_key: str | None = None, *, base_url: str | None = None,
                 retry: RetryPolicy | None = None, transport: httpx.BaseTransport | None = None):
        api_key = api_key if api_key is not None else os.environ.get("RUNPOD_API_KEY")
        if not api_key:
            raise MissingApiKey()
        self._api_key = api_key
        self.base_url = (base_url or os.environ.get("RUNPOD_REST_URL") or DEFAULT_REST_URL).rstrip("/")
        self.retry = retry or RetryPolicy()
        self._http = httpx.Client(headers={"Authorization": f"Bearer {api_key}"}, timeout=30.0,
                                  transport=transport)

    def __repr__(self) -> str:  # never the key
        return f"RunPodApi({self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RunPodApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def list_templates(self) -> list[Template]:
        # Templates bound to an endpoint are left out of the list unless asked for: ours always are.
        body = self._call("GET", "/templates", params={"includeEndpointBoundTemplates": "true"})
        return [Template.model_validate(t) for t in body]

    def list_endpoints(self) -> list[Endpoint]:
        return [Endpoint.model_validate(e) for e in self._call("GET", "/endpoints")]

    def create_template(self, body: TemplateCreateInput) -> Template:
        return Template.model_validate(self._call("POST", "/templates", json=body.body(), create=True))

    def update_template(self, template_id: str, body: TemplateUpdateInput) -> Template:
        return Template.model_validate(self._call("PATCH", f"/templates/{template_id}", json=body.body()))

    def delete_template(self, template_id: str) -> None:
        self._call("DELETE", f"/templates/{template_id}")

    def create_endpoint(self, body: EndpointCreateInput) -> Endpoint:
        return Endpoint.model_validate(self._call("POST", "/endpoints", json=body.body(), create=True))

    def update_endpoint(self, endpoint_id: str, body: EndpointUpdateInput) -> Endpoint:
        return Endpoint.model_validate(self._call("PATCH", f"/endpoints/{endpoint_id}", json=body.body()))

    def delete_endpoint(self, endpoint_id: str) -> None:
        self._call("DELETE", f"/endpoints/{endpoint_id}")

    def _call(self, method: str, path: str, *, create: bool = False, **kwargs: Any) -> Any:
        # A create that reached the server is not resent after a network error: it may have been made.
        response = send_with_retries(lambda: self._http.request(method, self.base_url + path, **kwargs),
                                     self.retry, resend_after_delivery=not create)
        if response.is_error:
            raise api_error(response, secret=self._api_key)
        return response.json() if response.content else None
