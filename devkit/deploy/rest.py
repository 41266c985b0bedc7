"""The calls deploy makes to RunPod's REST API v2, typed with api_models; errors are devkit.client's.

Base URL ``https://api.runpod.io/v2`` (RunPod docs, "Migrate from API v1": v1 at rest.runpod.io/v1 was
retired on 1 December 2026), overridable with RUNPOD_REST_URL (the tests' stand-in). The API key is
read from RUNPOD_API_KEY only and travels only in the Authorization header: it is never logged,
printed or kept in a repr, and it is scrubbed from any error text the server echoes. 429 and 5xx are
retried with backoff (devkit.client.retry, honouring v2's Retry-After); any other error is raised at
once as one line: v2's problem+json ``detail`` and its per-field ``errors``.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
from pydantic import ValidationError

from devkit.client.errors import ApiError, ClientError, api_error
from devkit.client.retry import RetryPolicy, send_with_retries
from devkit.deploy.api_models import (
    CreateEndpointRequest,
    Endpoint,
    ErrorResponse,
    GpuType,
    ListEndpointsResponse,
    ListEndpointWorkersResponse,
    ListGpuTypesResponse,
    UpdateEndpointRequest,
)

DEFAULT_REST_URL = "https://api.runpod.io/v2"


class MissingApiKey(ClientError):
    def __init__(self) -> None:
        super().__init__("RUNPOD_API_KEY is not set: create a key in the RunPod console (Settings > API Keys) "
                         "and export it; it is read from the environment only")


class RunPodApi:
    def __init__(self, *, base_url: str | None = None, retry: RetryPolicy | None = None,
                 transport: httpx.BaseTransport | None = None):
        api_key = os.environ.get("RUNPOD_API_KEY")
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

    # --- operations ---------------------------------------------------------------------------------

    def list_endpoints(self) -> list[Endpoint]:
        return ListEndpointsResponse.model_validate(self._call("GET", "/serverless")).endpoints

    def get_endpoint(self, endpoint_id: str) -> Endpoint:
        return Endpoint.model_validate(self._call("GET", f"/serverless/{endpoint_id}"))

    def create_endpoint(self, body: CreateEndpointRequest) -> Endpoint:
        return Endpoint.model_validate(self._call("POST", "/serverless", json=body.body(), create=True))

    def update_endpoint(self, endpoint_id: str, body: UpdateEndpointRequest) -> Endpoint:
        return Endpoint.model_validate(self._call("PATCH", f"/serverless/{endpoint_id}", json=body.body()))

    def delete_endpoint(self, endpoint_id: str) -> None:
        """Deletes the endpoint and its bound template (v2 deleteEndpoint); workers stop, jobs are cancelled."""
        self._call("DELETE", f"/serverless/{endpoint_id}")

    def list_workers(self, endpoint_id: str) -> ListEndpointWorkersResponse:
        return ListEndpointWorkersResponse.model_validate(self._call("GET", f"/serverless/{endpoint_id}/workers"))

    def list_gpu_types(self) -> list[GpuType]:
        return ListGpuTypesResponse.model_validate(self._call("GET", "/catalog/gpus")).gpus

    # --- transport ----------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, create: bool = False, **kwargs: Any) -> Any:
        # A create that reached the server is not resent after a network error: it may have been made.
        response = send_with_retries(lambda: self._http.request(method, self.base_url + path, **kwargs),
                                     self.retry, resend_after_delivery=not create)
        if response.is_error:
            raise self._error(response)
        return response.json() if response.content else None

    def _error(self, response: httpx.Response) -> ApiError:
        error = api_error(response, secret=self._api_key)
        try:
            problem = ErrorResponse.model_validate(response.json())
        except (ValueError, ValidationError):
            return error
        # v2's problem+json: the detail, then each field it refused ("$: additional properties 'x' not allowed").
        message = "; ".join([problem.detail, *problem.errors]).replace(self._api_key, "***")
        if error.status in (401, 403):
            message += " (check RUNPOD_API_KEY)"
        request = response.request
        return type(error)(error.status, message, request.method, str(request.url.copy_with(query=None)))
