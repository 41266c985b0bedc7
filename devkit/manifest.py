"""Each worker's ``workers/<name>/worker.toml``: what the rest of the repo knows about it, declared in its folder.

One file names it all, as Cog's ``cog.yaml`` does: the package the image starts, the typed model its job
input is parsed into, how to build its tiny fixture model (``make dev``, the tests, CI), the CPU stand-in
of its base that CI builds on, and its benchmark's first job. Every list elsewhere (bake targets, CI
stand-ins, test paths, ruff's packages, docs, fixtures, benchmarks) is derived from these files::

    [worker]
    package = "worker_sdxl"                       # `python -m worker_sdxl`: the Dockerfile's CMD
    input = "worker_sdxl.inputs:Input"            # module:attribute of its input model
    ci_base = "ci-local/pytorch:2.13.0-cpu"       # CI's stand-in for its BASE_IMAGE (.ci/standin/)

    [fixture]                                     # none: the worker loads no weights
    builder = "devkit.fixtures.sdxl"              # module with build(out_dir) -> out_dir
    folder = "tiny-sdxl"                          # under .models/
    env = { SOME_SETTING = "1" }                  # what the tiny model needs on a CPU, over endpoint.toml [env]
    adapters = "tiny-adapters"                    # LoRA adapters (the builder's ADAPTER_BUILDERS), under .models/

    [bench]
    first_job = { prompt = "a lighthouse" }       # the cold-start benchmark's first job
    engine_baseline = "devkit.bench.x:cold_start" # optional: the worker's raw engine, the cold-start baseline

    [docs.blocks]                                 # README blocks besides the input table (llm-vllm's)
    settings-table = "worker_llm_vllm.settings:reference"   # block name = module:function returning it

    [variants.embedding]                          # another local endpoint, id "<worker>-embedding": the same
    builder = "devkit.fixtures.embedding"         # package on another tiny model, as an image whose model.toml
    folder = "tiny-embedding"                     # names such a model serves it (`make dev`, e2e tests)
    env = { SERVED_MODEL_NAME = "tiny-embedding" }  # over the worker's [fixture] env
    input = "worker_x.embeddings:EmbeddingInput"  # its input model, when not the worker's (the page's form)
    example = { input = "Hello, world!" }         # a job input to try it with (the page, `make dev`'s curl line)

Standard library only: `.ci/bake_env.py` runs it with the system Python, before any virtualenv exists.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WORKERS_DIR = REPO / "workers"
FILE = "worker.toml"
#: Worker packages are ``worker_`` + the folder name (``-`` as ``_``): a worker named after a library
#: (``whisper``) cannot shadow it on sys.path.
PACKAGE_PREFIX = "worker_"
#: A worker (folder) name: also its endpoint id and image name.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")
_KEYS = {"worker": {"package", "input", "ci_base"}, "fixture": {"builder", "folder", "env", "adapters"},
         "bench": {"first_job", "engine_baseline"}, "docs": {"blocks"}}
#: Each ``[variants.<name>]`` table's keys; any table name is a variant's (``_KEYS`` does not list them).
_VARIANT_KEYS = {"builder", "folder", "env", "input", "example"}


class ManifestError(ValueError):
    """A worker.toml that is missing, malformed or disagrees with its folder; the message names the file."""


@dataclass(frozen=True)
class Fixture:
    builder: str
    folder: str
    env: dict[str, str] = field(default_factory=dict)
    #: Folder (under .models/) of the tiny LoRA adapters the worker serves in `make dev` and CI images;
    #: None: the worker serves no adapters.
    adapters: str | None = None


@dataclass(frozen=True)
class Variant:
    """Another local endpoint of a worker (``[variants.<name>]``, id ``<worker>-<name>``): the same package on
    another tiny model, with the environment that model needs over the worker's [fixture] env."""

    fixture: Fixture
    #: module:attribute of its input model, when its jobs are not the worker's (``None``: the worker's).
    input: str | None = None
    #: A job input to try it with.
    example: dict[str, Any] | None = None


@dataclass(frozen=True)
class Manifest:
    name: str
    folder: Path
    package: str
    input: str
    ci_base: str
    fixture: Fixture | None = None
    first_job: dict[str, Any] | None = None
    #: "module:function" starting the worker's engine alone to the first job's request done (an engine that
    #: profiles and builds a KV cache is measured against itself, not against a raw weights load).
    engine_baseline: str | None = None
    #: README block name -> "module:function" returning its markdown (devkit/docs.py).
    doc_blocks: dict[str, str] = field(default_factory=dict)
    variants: dict[str, Variant] = field(default_factory=dict)

    def input_model_path(self, variant: str | None = None) -> tuple[str, str]:
        """(module, attribute) of the job input model (of ``variant``, when it declares its own)."""
        declared = self.variants[variant].input if variant is not None else None
        module, _, attribute = (declared or self.input).partition(":")
        return module, attribute


def package_for(name: str) -> str:
    """The package a worker named ``name`` must have (its folder's name can be anything valid)."""
    return PACKAGE_PREFIX + name.replace("-", "_")


def worker_names(workers_dir: Path = WORKERS_DIR) -> list[str]:
    """Every worker: each folder of workers/ with a worker.toml."""
    return sorted(p.parent.name for p in workers_dir.glob(f"*/{FILE}"))


def load(name: str, workers_dir: Path = WORKERS_DIR) -> Manifest:
    path = workers_dir / name / FILE
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(f"{path}: {exc}") from exc
    for table, keys in _KEYS.items():
        unknown = set(data.get(table, {})) - keys
        if unknown:
            raise ManifestError(f"{path}: [{table}] has unknown keys {sorted(unknown)}; known: {sorted(keys)}")
    if unknown := set(data) - set(_KEYS) - {"variants"}:
        raise ManifestError(f"{path}: unknown tables {sorted(unknown)}; known: {sorted([*_KEYS, 'variants'])}")
    worker = data.get("worker", {})
    missing = {"package", "input", "ci_base"} - set(worker)
    if missing:
        raise ManifestError(f"{path}: [worker] needs {sorted(missing)}")
    if not NAME_PATTERN.match(name):
        raise ManifestError(f"{path}: the folder name {name!r} must be lower case letters, digits and '-'")
    if worker["package"] != package_for(name):
        raise ManifestError(f"{path}: package must be {package_for(name)!r} (worker_ + the folder name), "
                            f"got {worker['package']!r}")
    if not worker["input"].startswith(("shared.", f"{worker['package']}.")) or ":" not in worker["input"]:
        raise ManifestError(f"{path}: input must be 'module:attribute' in {worker['package']} or shared, "
                            f"got {worker['input']!r}")
    blocks = data.get("docs", {}).get("blocks", {})
    if bad := sorted(name for name, function in blocks.items() if not isinstance(function, str) or ":" not in function):
        raise ManifestError(f"{path}: [docs] blocks must map a block name to 'module:function', got {bad}")
    fixture = data.get("fixture")
    return Manifest(
        name=name, folder=path.parent, package=worker["package"], input=worker["input"], ci_base=worker["ci_base"],
        fixture=Fixture(fixture["builder"], fixture["folder"], dict(fixture.get("env", {})),
                        fixture.get("adapters")) if fixture else None,
        first_job=data.get("bench", {}).get("first_job"),
        engine_baseline=data.get("bench", {}).get("engine_baseline"), doc_blocks=dict(blocks),
        variants={variant: _variant(path, variant, table, worker["package"])
                  for variant, table in data.get("variants", {}).items()},
    )


def _variant(path: Path, name: str, table: Any, package: str) -> Variant:
    where = f"{path}: [variants.{name}]"
    if not isinstance(table, dict):
        raise ManifestError(f"{where} must be a table")
    if not NAME_PATTERN.match(f"x-{name}"):
        raise ManifestError(f"{where}: the name must be lower case letters, digits and '-'")
    if unknown := set(table) - _VARIANT_KEYS:
        raise ManifestError(f"{where} has unknown keys {sorted(unknown)}; known: {sorted(_VARIANT_KEYS)}")
    if missing := {"builder", "folder"} - set(table):
        raise ManifestError(f"{where} needs {sorted(missing)}")
    if "input" in table and (not table["input"].startswith(("shared.", f"{package}.")) or ":" not in table["input"]):
        raise ManifestError(f"{where}: input must be 'module:attribute' in {package} or shared, got {table['input']!r}")
    return Variant(Fixture(table["builder"], table["folder"], dict(table.get("env", {}))), table.get("input"),
                   table.get("example"))


def all_manifests(workers_dir: Path = WORKERS_DIR) -> list[Manifest]:
    return [load(name, workers_dir) for name in worker_names(workers_dir)]


def endpoint_ids(workers_dir: Path = WORKERS_DIR) -> list[str]:
    """Every local endpoint id: each worker's name, then ``<worker>-<variant>`` for each of its variants."""
    ids = [id_ for declared in all_manifests(workers_dir)
           for id_ in [declared.name, *(f"{declared.name}-{variant}" for variant in declared.variants)]]
    if clashes := sorted({id_ for id_ in ids if ids.count(id_) > 1}):
        raise ManifestError(f"endpoint ids declared twice (a worker and another's variant): {clashes}")
    return ids


def endpoint_of(endpoint_id: str, workers_dir: Path = WORKERS_DIR) -> tuple[Manifest, str | None]:
    """The worker behind a local endpoint id, and its variant's name (None: the worker itself)."""
    for declared in all_manifests(workers_dir):
        if endpoint_id == declared.name:
            return declared, None
        for variant in declared.variants:
            if endpoint_id == f"{declared.name}-{variant}":
                return declared, variant
    raise ManifestError(f"no worker or variant has the endpoint id {endpoint_id!r}; known: "
                        f"{', '.join(endpoint_ids(workers_dir))}")
