"""Weight baking: every model a worker's model.toml names, into one folder each, as the image serves them.

Run at image build time by the one weights stage (shared/weights.Dockerfile)::

    python weights.py --id org/model --revision <commit> [--variant fp16] --out /weights \\
        [--extras '{"vae": {"id": ..., "revision": ...}}'] [--adapters '{"my-lora": {"id": ..., "revision": ...}}'] \\
        [--local /src/model] [--local-extras /src/extras] [--token-file /run/secrets/hf_token]

The main model (model.toml's top-level keys) goes to ``<out>/model``, each extra model (a table of
model.toml, e.g. ``[vae]``) to ``<out>/<name>``. The main model is copied from ``--local`` and an extra
one from ``<--local-extras>/<name>`` when that folder holds files (named build contexts: CI and offline
builds), else downloaded from the Hugging Face Hub straight into its folder (no hub cache, so the
image holds one copy). Either way the
same selection applies: safetensors weights only (never pickled ``.bin``/``.pt``), plus the configs,
tokenizer files and chat templates, and the model's licence, use policy, notices and model card.

LoRA adapters (model.toml's ``[adapters.<served name>]``) go to ``<out>/adapters/<name>``, from
``<--local-extras>/adapters/<name>`` when that holds files: the same selection, and PEFT's
``adapter_config.json`` is required (its ``adapter_model.safetensors`` is the weights; pickled
``adapter_model.bin`` is never baked). The worker serves each under its folder's name.

An extra model that is a pipeline sharing parts with the main model (the SDXL refiner) does not store
them twice: a component folder named in its ``from_base`` is never baked (the worker always loads the
main model's), and one named in ``from_base_if_same`` is left out where its files are the same bytes as
the main model's same-named folder (the worker then loads the main model's; see
workers/sdxl/worker_sdxl/pipeline.py).

The token is read from a file (a BuildKit secret mount), passed to huggingface_hub as an argument and
never printed, logged or written. This file runs standalone (stdlib + huggingface_hub): the weights
stage copies only it, so changes elsewhere in ``shared`` do not invalidate the baked weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import shutil
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

log = logging.getLogger("shared.weights")

#: Non-weight files a model needs at load time: configs, tokenizers, chat templates, merges/vocab.
METADATA_SUFFIXES = (".json", ".txt", ".model", ".tiktoken", ".jinja")
#: Files at a repo's top that say on what terms the weights may be used: baked with them, whatever the
#: format (LICENSE, LICENSE.md, LICENSE.txt, USE_POLICY.md, NOTICE, the model card README.md).
LEGAL_FILES = re.compile(r"^((LICEN[CS]E|USE_POLICY|NOTICE)[^/]*|README\.md)$", re.IGNORECASE)
#: The file names the loaders read weights from (transformers, diffusers), before variant and shard
#: suffixes: where a folder has them, other safetensors beside them are single-file copies of the same.
LOADER_WEIGHTS = ("model", "diffusion_pytorch_model")
#: Folder of the main model under the output (and local) root; extra models are named by their table.
MAIN = "model"
#: Index files of pickled weights: useless without the pickles, and they would mislead loaders.
_PICKLE_INDEX = re.compile(r"\.(bin|pt|pth|ckpt)\.index(\.[\w-]+)?\.json$")
_SHARD_SUFFIX = re.compile(r"-\d{5}-of-\d{5}$")
_SAFETENSORS_INDEX = re.compile(r"\.safetensors\.index(?:\.(?P<variant>[\w-]+))?\.json$")
_EXTRA_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: Folder of the LoRA adapters under the output (and local extras) root, one folder each.
ADAPTERS = "adapters"
#: A served adapter name, which is also its folder's (the same rule as workers/llm-vllm's adapters.NAME).
_ADAPTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: The file that makes a folder a PEFT LoRA adapter (rank, target modules).
ADAPTER_CONFIG = "adapter_config.json"


class WeightsError(RuntimeError):
    """The model cannot be baked as asked; the message says why and what to change."""


@dataclass(frozen=True)
class Model:
    """One model to bake: a model.toml table (or its top level, ``name`` "model")."""

    name: str
    id: str
    revision: str
    variant: str | None = None
    #: Component folders the worker always takes from the main model: never baked for this one.
    from_base: tuple[str, ...] = ()
    #: Component folders the worker takes from the main model when this one has none: baked only where
    #: they differ from the main model's.
    from_base_if_same: tuple[str, ...] = ()
    #: Files the baked folder must hold (a LoRA adapter's config).
    required: tuple[str, ...] = ()


def variant_of(name: str) -> str | None:
    """'fp16' for ``model.fp16.safetensors`` or ``model.fp16-00001-of-00002.safetensors``; None if plain."""
    stem = _stem(name)
    return stem.rsplit(".", 1)[1] if stem is not None and "." in stem else None


def _stem(name: str) -> str | None:
    if not name.endswith(".safetensors"):
        return None
    return _SHARD_SUFFIX.sub("", PurePosixPath(name).name.removesuffix(".safetensors"))


def select_files(names: Iterable[str], read_json: Callable[[str], dict], variant: str | None = None) -> list[str]:
    """The repo-relative paths to bake, out of every path in the model repo or folder.

    ``read_json(path)`` returns a JSON file of the repo (model_index.json, safetensors index files).
    Rules: hidden paths are dropped; the top folder's licence, use-policy and notice files and model
    card are kept; a diffusers pipeline (model_index.json) keeps only its components' folders (so no
    single-file checkpoint or spare VAE); in each folder one set of safetensors is kept: the files the
    loaders read where the folder has them (not single-file copies beside them), the requested
    variant if the folder has it, else the plain files; where a safetensors index exists, only the
    shards it lists (so no consolidated duplicate).
    """
    paths = sorted({p for p in names if not any(part.startswith(".") for part in PurePosixPath(p).parts)})
    legal = [p for p in paths if LEGAL_FILES.match(p)]
    if "model_index.json" in paths:
        components = {key for key, value in read_json("model_index.json").items()
                      if isinstance(value, list) and value and value[0] is not None}
        paths = [p for p in paths if p == "model_index.json" or PurePosixPath(p).parts[0] in components]
    metadata = [p for p in paths if p.endswith(METADATA_SUFFIXES) and not _PICKLE_INDEX.search(p)]
    by_folder: dict[str, list[str]] = {}
    for path in paths:
        if path.endswith(".safetensors"):
            by_folder.setdefault(str(PurePosixPath(path).parent), []).append(path)
    weights = [w for folder, files in by_folder.items() for w in _one_set(folder, files, metadata, read_json, variant)]
    if not weights:
        raise WeightsError("no .safetensors weights found; only safetensors are baked (pickled weights are refused)")
    return sorted(set(metadata + weights + legal))


def _one_set(folder: str, files: list[str], metadata: list[str], read_json: Callable[[str], dict],
             variant: str | None) -> list[str]:
    loader_named = [f for f in files if (_stem(f) or "").split(".")[0] in LOADER_WEIGHTS]
    files = loader_named or files
    wanted = variant if variant and any(variant_of(f) == variant for f in files) else None
    chosen = [f for f in files if variant_of(f) == wanted]
    if not chosen:
        found = sorted({variant_of(f) for f in files} - {None})
        raise WeightsError(f"{folder}/ has only variant weights {found}; set `variant` in model.toml to one of them")
    for index in metadata:
        match = _SAFETENSORS_INDEX.search(index)
        if match and str(PurePosixPath(index).parent) == folder and match.group("variant") == wanted:
            listed = {str(PurePosixPath(folder) / name) for name in read_json(index)["weight_map"].values()}
            chosen = [f for f in chosen if f in listed]
    return chosen


def read_token(path: Path | None) -> str | None:
    """The token in ``path`` (a secret mount), stripped; None if the file is absent or empty."""
    if path is None or not path.is_file():
        return None
    return path.read_text().strip() or None


def _digest(path: Path, algorithm: str, prefix: bytes = b"") -> str:
    hasher = hashlib.new(algorithm, prefix)
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            hasher.update(block)
    return hasher.hexdigest()


class LocalFolder:
    """A model folder on disk (a named build context)."""

    def __init__(self, root: Path):
        self.root = root

    def names(self) -> list[str]:
        return [p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()]

    def read_json(self, name: str) -> dict:
        return json.loads((self.root / name).read_text())

    def same_file(self, name: str, other: Path) -> bool:
        mine = self.root / name
        return mine.stat().st_size == other.stat().st_size and _digest(mine, "sha256") == _digest(other, "sha256")

    def fetch(self, selected: list[str], out: Path) -> None:
        for name in selected:
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.root / name, target)


class HubRepo:
    """A Hub model repo at one revision; the token is an argument of every call, never ambient."""

    def __init__(self, model_id: str, revision: str, token: str | None, out: Path):
        from huggingface_hub import HfApi

        self.model_id, self.revision, self.out = model_id, revision, out
        self.auth = token or False  # False: never fall back to a token found in the environment or on disk
        tree = HfApi().list_repo_tree(model_id, revision=revision, recursive=True, token=self.auth)
        self.entries = {entry.path: entry for entry in tree if hasattr(entry, "blob_id")}  # files, not folders

    def names(self) -> list[str]:
        return list(self.entries)

    def read_json(self, name: str) -> dict:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(self.model_id, name, revision=self.revision, local_dir=self.out, token=self.auth)
        return json.loads(Path(path).read_text())

    def same_file(self, name: str, other: Path) -> bool:
        """Compared without downloading: LFS files by their sha256, the others by their git blob id."""
        entry = self.entries[name]
        if entry.lfs is not None:
            return _digest(other, "sha256") == entry.lfs.sha256
        return _digest(other, "sha1", b"blob %d\0" % other.stat().st_size) == entry.blob_id

    def fetch(self, selected: list[str], out: Path) -> None:
        from huggingface_hub import snapshot_download

        snapshot_download(self.model_id, revision=self.revision, local_dir=out, allow_patterns=selected,
                          token=self.auth)
        for stray in [p for p in out.rglob("*") if p.is_file() and p.relative_to(out).as_posix() not in selected]:
            stray.unlink()  # index files read for the selection but not kept
        shutil.rmtree(out / ".cache", ignore_errors=True)  # huggingface_hub's download bookkeeping


def without_base_components(selected: list[str], source: LocalFolder | HubRepo, base: Path,
                            from_base: Iterable[str] = (), from_base_if_same: Iterable[str] = ()) -> list[str]:
    """``selected`` less the component folders the worker takes from the main model baked in ``base``:
    those named in ``from_base``, and those in ``from_base_if_same`` whose every file is the same bytes
    as the base's."""
    folders: dict[str, list[str]] = {}
    for name in selected:
        parts = PurePosixPath(name).parts
        if len(parts) > 1:
            folders.setdefault(parts[0], []).append(name)
    dropped = set(from_base) & set(folders)
    for folder, names in folders.items():
        theirs = sorted(p.relative_to(base).as_posix() for p in (base / folder).rglob("*") if p.is_file())
        if (folder in set(from_base_if_same) - dropped and theirs == sorted(names)
                and all(source.same_file(n, base / n) for n in names)):
            dropped.add(folder)
    if dropped:
        log.info("not baked again, loaded from the main model: %s", ", ".join(sorted(dropped)))
    return [name for name in selected if PurePosixPath(name).parts[0] not in dropped]


def bake(model_id: str, revision: str, out: Path, *, local: Path | None = None, variant: str | None = None,
         token_file: Path | None = None, base: Path | None = None, from_base: Iterable[str] = (),
         from_base_if_same: Iterable[str] = (), required: Iterable[str] = ()) -> list[str]:
    """Bake one model into ``out`` from ``local`` if it holds files, else from the Hub; with ``base`` (the
    main model's baked folder), leave out the components shared with it (`without_base_components`);
    WeightsError, before any download, where a file of ``required`` is not in the selection."""
    if not model_id or not revision:
        raise WeightsError("model id and revision are required (they come from the worker's model.toml; "
                           "build through `make build` or set the bake variables)")
    out.mkdir(parents=True, exist_ok=True)
    source: LocalFolder | HubRepo
    if local is not None and local.is_dir() and any(local.iterdir()):
        log.info("baking %s@%s from the local folder given as build context", model_id, revision)
        if read_token(token_file):
            log.info("a Hub token was given (secret mount); a local folder does not need it")
        source = LocalFolder(local)
    else:
        token = read_token(token_file)
        log.info("downloading %s@%s from the Hub (%s)", model_id, revision,
                 "with a token" if token else "anonymously")
        source = HubRepo(model_id, revision, token, out)
    selected = select_files(source.names(), source.read_json, variant)
    missing = [name for name in required if name not in selected]
    if missing:
        raise WeightsError(f"{model_id}@{revision} has no {', '.join(missing)}: a LoRA adapter must be in PEFT's "
                           "format (adapter_config.json + adapter_model.safetensors)")
    if base is not None:
        selected = without_base_components(selected, source, base, from_base, from_base_if_same)
    source.fetch(selected, out)
    total = sum((out / name).stat().st_size for name in selected)
    log.info("baked %d files, %.1f MB, into %s", len(selected), total / 1e6, out)
    return selected


def _tables(text: str, flag: str) -> dict:
    """The JSON object of model.toml tables that ``flag`` passes (.ci/bake_env.py writes it)."""
    try:
        return json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{flag} is not JSON: {exc}") from None


def extra_models(text: str) -> list[Model]:
    """The extra models of a ``--extras`` JSON object (model.toml's tables, as .ci/bake_env.py passes them)."""
    tables = _tables(text, "--extras")
    models = []
    for name, table in sorted(tables.items()):
        if not _EXTRA_NAME.match(name) or name in (MAIN, ADAPTERS):
            raise WeightsError(f"extra model name {name!r}: lower case letters, digits and _, not {MAIN!r} "
                               f"or {ADAPTERS!r}")
        models.append(Model(name, table.get("id", ""), table.get("revision", ""), table.get("variant") or None,
                            tuple(table.get("from_base", ())), tuple(table.get("from_base_if_same", ()))))
    return models


def adapter_models(text: str) -> list[Model]:
    """The LoRA adapters of an ``--adapters`` JSON object (model.toml's ``[adapters.<name>]``), each a model
    named ``adapters/<name>``: baked into that folder, from that folder of the local extras."""
    tables = _tables(text, "--adapters")
    models = []
    for name, table in sorted(tables.items()):
        if not _ADAPTER_NAME.match(name):
            raise WeightsError(f"adapter name {name!r}: letters, digits, '.', '_' and '-', at most 128, "
                               "starting with a letter or digit (clients send it as `model`)")
        models.append(Model(f"{ADAPTERS}/{name}", table.get("id", ""), table.get("revision", ""),
                            required=(ADAPTER_CONFIG,)))
    return models


def bake_all(models: list[Model], out: Path, *, local: Path | None = None, local_extras: Path | None = None,
             token_file: Path | None = None) -> dict[str, list[str]]:
    """Bake the main model (first) into ``out/model`` from ``local``, and each extra into ``out/<name>``
    from ``local_extras/<name>`` (the Hub where those are absent or empty); adapters' names are
    ``adapters/<name>``."""
    baked = {}
    for model in models:
        base, source = (None, local) if model.name == MAIN else (out / MAIN, local_extras and local_extras / model.name)
        log.info("[%s] %s", model.name, model.id)
        baked[model.name] = bake(model.id, model.revision, out / model.name, variant=model.variant, local=source,
                                 token_file=token_file, base=base, from_base=model.from_base,
                                 from_base_if_same=model.from_base_if_same, required=model.required)
    return baked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--id", required=True, help="Hub model id (model.toml `id`)")
    parser.add_argument("--revision", required=True, help="Hub commit (model.toml `revision`)")
    parser.add_argument("--variant", default="", help="weights variant, e.g. fp16 (model.toml `variant`)")
    parser.add_argument("--extras", default="{}", help="JSON object: model.toml's tables (extra models)")
    parser.add_argument("--adapters", default="{}", help="JSON object: model.toml's [adapters.<name>] tables "
                                                         "(LoRA adapters, baked into adapters/<name>)")
    parser.add_argument("--out", required=True, type=Path, help="root folder: model/ and one folder per extra")
    parser.add_argument("--local", type=Path, help="local folder of the main model; used when it holds files")
    parser.add_argument("--local-extras", type=Path, help="local folder with a folder per extra model, named "
                                                          "after its table, and adapters/<name> per adapter; each "
                                                          "used when it holds files")
    parser.add_argument("--token-file", type=Path, help="file holding the Hub token (a secret mount)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        models = [Model(MAIN, args.id, args.revision, args.variant or None), *extra_models(args.extras),
                  *adapter_models(args.adapters)]
        bake_all(models, args.out, local=args.local, local_extras=args.local_extras, token_file=args.token_file)
    except WeightsError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
