"""Weight baking: one model's safetensors and config/tokenizer files, into the one folder the image serves.

Run at image build time, in a stage of its own (see workers/*/Dockerfile)::

    python weights.py --id org/model --revision <commit> --out /model \\
        [--local /src] [--variant fp16] [--token-file /run/secrets/hf_token]

With ``--local`` pointing at a non-empty folder (a named build context: CI and offline builds) the files
are copied from there; otherwise they are downloaded from the Hugging Face Hub straight into ``--out``
(no hub cache, so the image holds one copy). Either way the same selection applies: safetensors
weights only (never pickled ``.bin``/``.pt``), plus the configs, tokenizer files and chat templates.

The token is read from a file (a BuildKit secret mount), passed to huggingface_hub as an argument and
never printed, logged or written. This file runs standalone (stdlib + huggingface_hub): the weights
stage copies only it, so changes elsewhere in ``shared`` do not invalidate the baked weights.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

log = logging.getLogger("shared.weights")

#: Non-weight files a model needs at load time: configs, tokenizers, chat templates, merges/vocab.
METADATA_SUFFIXES = (".json", ".txt", ".model", ".tiktoken", ".jinja")
#: Index files of pickled weights: useless without the pickles, and they would mislead loaders.
_PICKLE_INDEX = re.compile(r"\.(bin|pt|pth|ckpt)\.index(\.[\w-]+)?\.json$")
_SHARD_SUFFIX = re.compile(r"-\d{5}-of-\d{5}$")
_SAFETENSORS_INDEX = re.compile(r"\.safetensors\.index(?:\.(?P<variant>[\w-]+))?\.json$")


class WeightsError(RuntimeError):
    """The model cannot be baked as asked; the message says why and what to change."""


def variant_of(name: str) -> str | None:
    """'fp16' for ``model.fp16.safetensors`` or ``model.fp16-00001-of-00002.safetensors``; None if plain."""
    if not name.endswith(".safetensors"):
        return None
    stem = _SHARD_SUFFIX.sub("", PurePosixPath(name).name.removesuffix(".safetensors"))
    return stem.rsplit(".", 1)[1] if "." in stem else None


def select_files(names: Iterable[str], read_json: Callable[[str], dict], variant: str | None = None) -> list[str]:
    """The repo-relative paths to bake, out of every path in the model repo or folder.

    ``read_json(path)`` returns a JSON file of the repo (model_index.json, safetensors index files).
    Rules: hidden paths are dropped; a diffusers pipeline (model_index.json) keeps only its components'
    folders (so no single-file checkpoint or spare VAE); in each folder one set of safetensors is kept,
    the requested variant if the folder has it, else the plain files; where a safetensors index exists,
    only the shards it lists (so no consolidated duplicate).
    """
    paths = sorted({p for p in names if not any(part.startswith(".") for part in PurePosixPath(p).parts)})
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
    return sorted(metadata + weights)


def _one_set(folder: str, files: list[str], metadata: list[str], read_json: Callable[[str], dict],
             variant: str | None) -> list[str]:
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


def bake_local(source: Path, out: Path, variant: str | None = None) -> list[str]:
    """Copy the selected files of a local model folder into ``out``."""
    names = [p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file()]
    selected = select_files(names, lambda name: json.loads((source / name).read_text()), variant)
    for name in selected:
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, target)
    return selected


def bake_hub(model_id: str, revision: str, out: Path, token: str | None, variant: str | None = None) -> list[str]:
    """Download the selected files of a Hub repo at ``revision`` straight into ``out``."""
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download

    auth = token or False  # False: never fall back to a token found in the environment or on disk
    names = HfApi().list_repo_files(model_id, revision=revision, token=auth)

    def read_json(name: str) -> dict:
        path = hf_hub_download(model_id, name, revision=revision, local_dir=out, token=auth)
        return json.loads(Path(path).read_text())

    selected = select_files(names, read_json, variant)
    snapshot_download(model_id, revision=revision, local_dir=out, allow_patterns=selected, token=auth)
    for stray in [p for p in out.rglob("*") if p.is_file() and p.relative_to(out).as_posix() not in selected]:
        stray.unlink()  # index files read for the selection but not kept
    shutil.rmtree(out / ".cache", ignore_errors=True)  # huggingface_hub's download bookkeeping
    return selected


def bake(model_id: str, revision: str, out: Path, *, local: Path | None = None, variant: str | None = None,
         token_file: Path | None = None) -> list[str]:
    """Bake the model into ``out`` from ``local`` if it holds files, else from the Hub."""
    if not model_id or not revision:
        raise WeightsError("model id and revision are required (they come from the worker's model.toml; "
                           "build through `make build` or set the bake variables)")
    out.mkdir(parents=True, exist_ok=True)
    if local is not None and local.is_dir() and any(local.iterdir()):
        log.info("baking %s@%s from the local folder given as build context", model_id, revision)
        if read_token(token_file):
            log.info("a Hub token was given (secret mount); a local folder does not need it")
        selected = bake_local(local, out, variant)
    else:
        token = read_token(token_file)
        log.info("downloading %s@%s from the Hub (%s)", model_id, revision,
                 "with a token" if token else "anonymously")
        selected = bake_hub(model_id, revision, out, token, variant)
    total = sum((out / name).stat().st_size for name in selected)
    log.info("baked %d files, %.1f MB, into %s", len(selected), total / 1e6, out)
    return selected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--id", required=True, help="Hub model id (model.toml `id`)")
    parser.add_argument("--revision", required=True, help="Hub commit (model.toml `revision`)")
    parser.add_argument("--out", required=True, type=Path, help="folder the image serves (MODEL_PATH)")
    parser.add_argument("--local", type=Path, help="local model folder; used when it holds files")
    parser.add_argument("--variant", default="", help="weights variant, e.g. fp16 (model.toml `variant`)")
    parser.add_argument("--token-file", type=Path, help="file holding the Hub token (a secret mount)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        bake(args.id, args.revision, args.out, local=args.local, variant=args.variant or None,
             token_file=args.token_file)
    except WeightsError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
