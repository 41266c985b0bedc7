"""Each built worker image holds exactly its lock's package versions (workers/<name>/requirements.lock).

    python .ci/image_packages.py --registry 127.0.0.1:5000/workers --tag ci progress-demo llm-hf ...

Inside the image (`docker run`), every lock entry whose environment markers hold there must be installed
at the locked version; what the lock leaves to the base (torch, vLLM) is not looked at. Markers are read
with the packaging copy pip vendors, so the check needs nothing the image does not already have. Two
builds of one commit that pass this install the same package set. Prints one line per image; exits
non-zero when an image differs from its lock.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

WORKERS = Path(__file__).resolve().parents[1] / "workers"
def locked(lock: Path) -> list[str]:
    """The lock's requirement lines (``name==version ; markers``), hashes and comments dropped."""
    return [line.rstrip(" \\") for line in lock.read_text().splitlines() if line and line[0].isalnum()]


#: Run by the image's python, the lock's lines on stdin: prints "name locked installed" per mismatch.
CHECK = r"""
import sys
from importlib.metadata import PackageNotFoundError, version
from pip._vendor.packaging.requirements import Requirement
checked = 0
for line in sys.stdin.read().splitlines():
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate():
        continue
    checked += 1
    locked = next(iter(req.specifier)).version
    try:
        installed = version(req.name)
    except PackageNotFoundError:
        installed = "missing"
    if installed != locked:
        print(f"{req.name} {locked} {installed}")
print(f"checked {checked}", file=sys.stderr)
"""


def differences(image: str, lock: Path) -> tuple[list[str], str]:
    """(mismatch lines "name locked installed", the image's summary line)."""
    result = subprocess.run(["docker", "run", "--rm", "-i", "--network", "none", "--entrypoint", "python", image,
                             "-c", CHECK], input="\n".join(locked(lock)), capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{image}: the package check did not run:\n{result.stderr}")
    return result.stdout.splitlines(), result.stderr.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("workers", nargs="+")
    args = parser.parse_args(argv)
    failed = False
    for name in args.workers:
        image = f"{args.registry}/{name}:{args.tag}"
        mismatches, summary = differences(image, WORKERS / name / "requirements.lock")
        print(f"{image}: {summary} locked packages, {len(mismatches)} differ")
        for line in mismatches:
            print(f"  {line.split()[0]}: locked {line.split()[1]}, installed {line.split()[2]}")
        failed |= bool(mismatches)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
