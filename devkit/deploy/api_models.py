"""The bodies of RunPod's REST API v2 (https://api.runpod.io/v2) that deploy sends and reads.

A trimmed, typed copy of RunPod's OpenAPI document "Runpod REST API" 2.0.0 (served at
https://api.runpod.io/v2/openapi.json; the docs carry it per operation under "API reference v2",
source file ``api-reference-v2/openapi.json`` of github.com/runpod/docs), limited to the operations
deploy uses: ``createEndpoint`` (POST /v2/serverless), ``listEndpoints`` (GET /v2/serverless),
``getEndpoint`` / ``updateEndpoint`` / ``deleteEndpoint`` (/v2/serverless/{id}),
``listEndpointWorkers`` (GET /v2/serverless/{id}/workers) and ``listGpuTypes`` (GET /v2/catalog/gpus).
Schemas: CreateEndpointRequest, UpdateEndpointRequest, CreateEndpointGpuConfig,
UpdateEndpointGpuConfig, EndpointWorkers, QueueDelayScaling, RequestCountScaling, FlashBoot, Endpoint,
ListEndpointsResponse, ListEndpointWorkersResponse, ListGpuTypesResponse, ErrorResponse.

Request models forbid unknown fields, as v2 does (``unevaluatedProperties: false``; a 422 names the
field), and carry the rules the document states in prose (one of gpu/cpu, image unless templateId,
CUDA set vs floor, no idleTimeout with a REQUEST_COUNT queue scaler). Response models ignore fields
they do not name, so a field RunPod adds within v2 does not break a deploy. Field names are v2's
camelCase on the wire (aliases), snake_case in Python. Fields deploy never sets (args, ports, cpu
configurations' memory, mounts...) are kept only where the schema needs them to be checked.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

CudaVersion = Annotated[str, Field(pattern=r"^\d+\.\d+$")]
FlashBoot = Literal["OFF", "FLASHBOOT", "PRIORITY_FLASHBOOT"]
EndpointType = Literal["QUEUE", "LOAD_BALANCER"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)

    def body(self) -> dict[str, Any]:
        """The JSON body: camelCase names, only the fields that were set (PATCH leaves the rest alone)."""
        return self.model_dump(by_alias=True, exclude_unset=True)


class QueueDelayScaling(_Request):
    type: Literal["QUEUE_DELAY"]
    queue_delay: float = Field(ge=0.5)


class RequestCountScaling(_Request):
    type: Literal["REQUEST_COUNT"]
    request_count: int = Field(ge=1)


EndpointScaling = Annotated[QueueDelayScaling | RequestCountScaling, Field(discriminator="type")]


class EndpointWorkers(_Request):
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)
    idle_timeout: int | None = Field(None, ge=1, le=3600)


class CreateCpuConfig(_Request):
    id: str = Field(min_length=1)
    vcpu_count: int = Field(ge=2)


class _GpuFields(_Request):
    pools: list[str] | None = Field(None, min_length=1)
    excluded_types: list[str] | None = None
    count: int | None = Field(None, ge=1)
    allowed_cuda_versions: list[CudaVersion] | None = None

    @model_validator(mode="after")
    def _cuda_set_or_floor(self) -> _GpuFields:
        if self.allowed_cuda_versions and getattr(self, "min_cuda_version", None):
            raise ValueError("a non-empty allowedCudaVersions and minCudaVersion exclude each other")
        if self.excluded_types is not None and len(set(self.excluded_types)) != len(self.excluded_types):
            raise ValueError("excludedTypes: items must be unique")
        return self


class CreateEndpointGpuConfig(_GpuFields):
    pools: list[str] = Field(min_length=1)
    min_cuda_version: CudaVersion | None = None


class UpdateEndpointGpuConfig(_GpuFields):
    #: "" clears the floor on update.
    min_cuda_version: Annotated[str, Field(pattern=r"^$|^\d+\.\d+$")] | None = None

    @model_validator(mode="after")
    def _exclusions_need_pools(self) -> UpdateEndpointGpuConfig:
        if self.excluded_types is not None and self.pools is None:
            raise ValueError("excludedTypes requires pools (dependentRequired)")
        return self


class _ContainerConfig(_Request):
    args: str | None = None
    disk: int | None = Field(None, ge=1)
    env: dict[str, str] | None = None
    image: str | None = None
    ports: list[str] | None = None
    registry: str | None = None


class _EndpointFields(_ContainerConfig):
    cpu: list[CreateCpuConfig] | None = Field(None, min_length=1)
    data_center_ids: list[str] | None = None
    flashboot: FlashBoot | None = None
    network_volumes: list[str] | None = None
    template_id: str | None = None
    timeout: int | None = None
    workers: EndpointWorkers | None = None
    scaling: EndpointScaling | None = None
    name: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _no_idle_timeout_when_scaling_on_requests(self) -> _EndpointFields:
        # EndpointWorkers.idleTimeout: "Not applicable to queue-based endpoints scaling on requestCount".
        if (isinstance(self.scaling, RequestCountScaling) and self.workers is not None
                and self.workers.idle_timeout is not None and getattr(self, "type", "QUEUE") == "QUEUE"):
            raise ValueError("workers.idleTimeout is not applicable to a queue endpoint scaling on requestCount")
        return self


class CreateEndpointRequest(_EndpointFields):
    name: str = Field(min_length=1)
    type: EndpointType
    scaling: EndpointScaling
    gpu: CreateEndpointGpuConfig | None = None
    template_id: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _create_rules(self) -> CreateEndpointRequest:
        if (self.gpu is None) == (self.cpu is None):
            raise ValueError("specify exactly one of gpu or cpu")
        if self.image is None and self.template_id is None:
            raise ValueError("image is required unless templateId is set")
        if self.type == "LOAD_BALANCER" and not isinstance(self.scaling, RequestCountScaling):
            raise ValueError("a LOAD_BALANCER endpoint scales on REQUEST_COUNT")
        return self


class UpdateEndpointRequest(_EndpointFields):
    """PATCH /v2/serverless/{id}: only the fields present change. Container changes (image, env)
    create a new release that rolls out as workers cycle."""

    gpu: UpdateEndpointGpuConfig | None = None

    @model_validator(mode="after")
    def _one_compute_family(self) -> UpdateEndpointRequest:
        if self.gpu is not None and self.cpu is not None:
            raise ValueError("gpu and cpu exclude each other")
        return self


# --- responses ------------------------------------------------------------------------------------


class _Resource(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True, frozen=True)


class EndpointGpuConfig(_Resource):
    pools: list[str]
    count: int = 1
    excluded_types: list[str] = Field(default_factory=list)
    allowed_cuda_versions: list[str] = Field(default_factory=list)
    min_cuda_version: str | None = None


class EndpointWorkersState(_Resource):
    min: int
    max: int
    idle_timeout: int | None = None


class ResponseQueueDelayScaling(_Resource):
    type: Literal["QUEUE_DELAY"]
    queue_delay: float


class ResponseRequestCountScaling(_Resource):
    type: Literal["REQUEST_COUNT"]
    request_count: int


class Endpoint(_Resource):
    id: str
    name: str
    type: EndpointType | None = None
    #: QueueBasedRequestUrls (run, runSync, status, stream, cancel, retry, purgeQueue, health) or
    #: LoadBalancingRequestUrls (base, health): kept as v2 sends them, keyed by v2's names.
    request_urls: dict[str, str] = Field(default_factory=dict)
    image: str | None = None
    disk: int | None = None
    env: dict[str, str] = Field(default_factory=dict)
    registry: str | None = None
    gpu: EndpointGpuConfig | None = None
    workers: EndpointWorkersState
    scaling: Annotated[ResponseQueueDelayScaling | ResponseRequestCountScaling, Field(discriminator="type")]
    data_center_ids: list[str]
    network_volumes: list[str]
    timeout: int
    flashboot: FlashBoot
    created_at: str


class ListEndpointsResponse(_Resource):
    endpoints: list[Endpoint]


WorkerStatus = Literal["RUNNING", "IDLE", "INITIALIZING", "THROTTLED", "UNHEALTHY"]


class Worker(_Resource):
    id: str
    status: WorkerStatus
    is_stale: bool
    gpu_count: int
    version: int | None = None
    image: str | None = None
    uptime_seconds: int | None = None
    gpu_type_id: str | None = None
    data_center_id: str | None = None
    started_at: str | None = None


class WorkerSummary(_Resource):
    running: int
    idle: int
    initializing: int
    throttled: int
    unhealthy: int
    total: int


class ListEndpointWorkersResponse(_Resource):
    workers: list[Worker]
    summary: WorkerSummary
    endpoint_version: int | None = None


class GpuType(_Resource):
    id: str
    name: str
    #: Serverless pool id; None: not offered on serverless.
    pool: str | None
    manufacturer: str
    #: VRAM in GB, as the catalog states it.
    memory: int


class ListGpuTypesResponse(_Resource):
    gpus: list[GpuType]


class ErrorResponse(_Resource):
    """application/problem+json: every v2 error."""

    title: str
    status: int
    detail: str
    errors: list[str] = Field(default_factory=list)
