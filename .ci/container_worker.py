"""One worker process of the local endpoint that is a container: `docker run` of a worker image.

The local endpoint starts ``python -m container_worker`` with RunPod's worker environment (job-take,
job-done, stream and ping URLs on 127.0.0.1, pod id, API key); this process becomes ``docker run`` of
``CI_WORKER_IMAGE`` with that environment on the host network, so the image's own CMD serves through
the SDK's real job loop. The docker client passes SIGTERM on to the container's PID 1 (the exec-form
CMD), so a drain reaches Python. Names in ``CI_CONTAINER_ENV`` (comma-separated) are passed on too.
"""

from __future__ import annotations

import os

#: Label of every container this starts, so the CI script can remove any that outlive their client.
LABEL = "ci.worker-smoke=1"


def docker_run_args(environ: dict[str, str]) -> list[str]:
    names = sorted(name for name in environ if name.startswith("RUNPOD_"))
    names += [name for name in environ.get("CI_CONTAINER_ENV", "").split(",") if name in environ]
    # A GPU host gives serving containers a large /dev/shm; Docker's 64 MB default is too small for
    # vLLM's shared-memory queues.
    args = ["docker", "run", "--rm", "--network", "host", "--shm-size", "1g", "--label", LABEL]
    for name in names:
        args += ["--env", name]  # the value comes from this process's environment, never the command line
    return [*args, environ["CI_WORKER_IMAGE"]]


if __name__ == "__main__":
    args = docker_run_args(dict(os.environ))
    os.execvp(args[0], args)
