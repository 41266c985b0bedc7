"""Weights read while the code imports: a daemon thread streams a worker's safetensors files into the page cache.

A cold start pays the framework imports (torch, transformers, diffusers, vLLM: seconds of CPU) and then
the weights read (seconds of disk or network volume) one after the other. Reading the files into the
page cache in a background thread from process start overlaps the two: the loader that runs after the
imports (safetensors maps the files) then finds them in memory. The read is a plain sequential
``readinto`` (it releases the GIL, so the imports keep the interpreter) rather than only
``posix_fadvise(WILLNEED)``, which network and overlay file systems may ignore.

A worker declares the env vars naming the folders its ``setup()`` loads (``weight_folders``, e.g.
``("MODEL_PATH", "VAE_PATH", "REFINER_PATH")``); shared.serving starts the thread before ``setup()``.
Nothing here fails a start: a variable unset, a folder missing or a file unreadable is skipped (setup
checks the folders and reports them, shared.settings.folder), and the thread never holds the exit.
At most `MEMORY_SHARE` of the memory available at start is read, so a model larger than the page
cache can hold does not evict its own first files before the loader gets to them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

#: Env var turning the prefetch off ("0"): a host whose weights are already in memory, or a benchmark's baseline.
PREFETCH_ENV = "WEIGHTS_PREFETCH"

#: Bytes per read: large enough that the loop's Python overhead is nothing next to the copy.
CHUNK_BYTES = 16 * 1024 * 1024

#: Share of MemAvailable (at start) the prefetch may read; the rest is left to the process and the loader.
MEMORY_SHARE = 0.5

#: The weights format the workers load (shared.weights bakes only safetensors).
WEIGHTS_GLOB = "*.safetensors"


def enabled() -> bool:
    return os.environ.get(PREFETCH_ENV, "1").strip() != "0"


def start(folder_envs: Iterable[str]) -> threading.Thread | None:
    """Start reading the weight files of the folders ``folder_envs`` name; the thread, None if nothing to read."""
    if not enabled():
        return None
    folders = _folders(folder_envs)
    if not folders:
        return None
    # Listing the files walks the folders (a network volume answers slowly): in the thread too.
    thread = threading.Thread(target=lambda: read_all(list(weight_files(folders)), _budget()),
                              name="weights-prefetch", daemon=True)
    thread.start()
    return thread


def _folders(folder_envs: Iterable[str]) -> list[Path]:
    raw = (os.environ.get(name, "").strip() for name in folder_envs)
    return [Path(value) for value in raw if value and Path(value).is_dir()]


def weight_files(folders: Iterable[Path]) -> Iterator[Path]:
    """Every safetensors file under ``folders``, each once, in a stable order; a missing folder yields nothing."""
    seen: set[Path] = set()
    for folder in folders:
        try:
            found = sorted(folder.rglob(WEIGHTS_GLOB))
        except OSError:
            continue
        for path in found:
            if path not in seen:
                seen.add(path)
                yield path


def read_all(files: list[Path], budget: int | None) -> int:
    """Read ``files`` through once, stopping at ``budget`` bytes (None: no limit); the bytes read."""
    started, total = time.perf_counter(), 0
    buffer = bytearray(CHUNK_BYTES)
    for path in files:
        if budget is not None and total >= budget:
            log.info("weights prefetch stopped at %d MiB (%.0f%% of the memory available)", total >> 20,
                     MEMORY_SHARE * 100)
            break
        total += _read_file(path, buffer, None if budget is None else budget - total)
    log.info("weights prefetch: %d MiB from %d files in %.2f s", total >> 20, len(files), time.perf_counter() - started)
    return total


def _read_file(path: Path, buffer: bytearray, limit: int | None) -> int:
    read = 0
    try:
        with open(path, "rb", buffering=0) as stream:
            view = memoryview(buffer)
            while limit is None or read < limit:
                count = stream.readinto(view)
                if not count:
                    break
                read += count
    except OSError as error:  # the loader reads it again and reports what is wrong
        log.debug("weights prefetch skipped %s: %s", path, error)
    return read


def _budget() -> int | None:
    """MEMORY_SHARE of /proc/meminfo's MemAvailable; None where it cannot be read (not Linux)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as lines:
            for line in lines:
                if line.startswith("MemAvailable:"):
                    return int(int(line.split()[1]) * 1024 * MEMORY_SHARE)
    except (OSError, ValueError, IndexError):
        pass
    return None
