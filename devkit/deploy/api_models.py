"""The request and response bodies of RunPod's REST API v1 (https://rest.runpod.io/v1) that deploy uses.

Written from RunPod's published OpenAPI document (``/openapi.json``, "Runpod API" 0.1.0: schemas
TemplateCreateInput, TemplateUpdateInput, EndpointCreateInput, EndpointUpdateInput, Template,
Endpoint), limited to the fields deploy sets or reads. Request models forbid unknown fields, so a
typo here fails in our tests, not in RunPod's API; response models ignore what they do not name.
Field names are the API's camelCase on the wire (aliases), snake_case in Python.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

#: The document's enum of GPU type ids (EndpointCreateInput.gpuTypeIds.items), minus its aliases
#: with doubled spaces or a fused "TI", which name the same cards.
GPU_TYPE_IDS = frozenset({
    "NVIDIA GeForce RTX 4090", "NVIDIA A40", "NVIDIA RTX A5000", "NVIDIA GeForce RTX 5090",
    "NVIDIA H100 80GB HBM3", "NVIDIA GeForce RTX 3090", "NVIDIA RTX A4500", "NVIDIA L40S", "NVIDIA H200",
    "NVIDIA L4", "NVIDIA RTX 6000 Ada Generation", "NVIDIA A100-SXM4-80GB", "NVIDIA RTX 4000 Ada Generation",
    "NVIDIA RTX A6000", "NVIDIA A100 80GB PCIe", "NVIDIA RTX 2000 Ada Generation", "NVIDIA RTX A4000",
    "NVIDIA RTX PRO 6000 Blackwell Server Edition", "NVIDIA H100 PCIe", "NVIDIA H100 NVL", "NVIDIA L40",
    "NVIDIA B200", "NVIDIA GeForce RTX 3080 Ti", "NVIDIA RTX PRO 6000 Blackwell Workstation Edition",
    "NVIDIA GeForce RTX 3080", "NVIDIA GeForce RTX 3070", "AMD Instinct MI300X OAM",
    "NVIDIA GeForce RTX 4080 SUPER", "Tesla V100-PCIE-16GB", "Tesla V100-SXM2-32GB",
    "NVIDIA RTX 5000 Ada Generation", "NVIDIA GeForce RTX 4070 Ti", "NVIDIA RTX 4000 SFF Ada Generation",
    "NVIDIA GeForce RTX 3090 Ti", "NVIDIA RTX A2000", "NVIDIA GeForce RTX 4080", "NVIDIA A30",
    "NVIDIA GeForce RTX 5080", "Tesla V100-FHHL-16GB", "NVIDIA H200 NVL", "Tesla V100-SXM2-16GB",
    "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition", "NVIDIA A5000 Ada", "Tesla V100-PCIE-32GB",
    "Tesla T4", "NVIDIA RTX A30",
})


def _known_gpu_types(types: list[str] | None) -> list[str] | None:
    unknown = [t for t in types or () if t not in GPU_TYPE_IDS]
    if unknown:
        raise ValueError(f"unknown RunPod GPU type id(s): {', '.join(unknown)}")
    return types


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)

    def body(self) -> dict[str, Any]:
        """The JSON body: camelCase names, unset fields left out (RunPod applies its defaults)."""
        return self.model_dump(by_alias=True, exclude_none=True)


class _TemplateFields(_Request):
    container_disk_in_gb: int | None = Field(None, ge=1)
    container_registry_auth_id: str | None = None
    env: dict[str, str] | None = None
    image_name: str | None = None
    name: str | None = None


class TemplateCreateInput(_TemplateFields):
    name: str
    image_name: str
    is_serverless: bool | None = None


class TemplateUpdateInput(_TemplateFields):
    """PATCH /templates/{id}: every field optional; RunPod rolls the change out to bound endpoints."""


class _EndpointFields(_Request):
    execution_timeout_ms: int | None = Field(None, ge=1)
    flashboot: bool | None = None
    gpu_count: int | None = Field(None, ge=1)
    gpu_type_ids: list[str] | None = None
    idle_timeout: int | None = Field(None, ge=1, le=3600)
    name: str | None = Field(None, max_length=191)
    network_volume_id: str | None = None
    template_id: str | None = None
    workers_max: int | None = Field(None, ge=0)
    workers_min: int | None = Field(None, ge=0)

    _gpu_types = field_validator("gpu_type_ids")(_known_gpu_types)


class EndpointCreateInput(_EndpointFields):
    template_id: str


class EndpointUpdateInput(_EndpointFields):
    """PATCH /endpoints/{id}: every field optional; RunPod rolls the change out to the workers."""


class _Resource(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True, frozen=True)


class Template(_Resource):
    id: str
    name: str
    image_name: str | None = None
    container_disk_in_gb: int | None = None
    container_registry_auth_id: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    is_serverless: bool | None = None


class Endpoint(_Resource):
    id: str
    name: str | None = None
    template_id: str | None = None
    gpu_type_ids: list[str] = Field(default_factory=list)
    gpu_count: int | None = None
    idle_timeout: int | None = None
    execution_timeout_ms: int | None = None
    #: Not in the document's Endpoint schema: None when the API does not report it.
    flashboot: bool | None = None
    network_volume_id: str | None = None
    workers_min: int | None = None
    workers_max: int | None = None
