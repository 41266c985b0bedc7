"""``deploy status``: each worker's endpoint as RunPod v2 reports it, and whether it matches endpoint.toml."""

from __future__ import annotations

from collections import Counter

from devkit.deploy.api_models import Endpoint, GpuType, ListEndpointWorkersResponse

#: Request URLs shown, in this order (QueueBasedRequestUrls, then LoadBalancingRequestUrls).
_URLS = ("run", "runSync", "status", "stream", "cancel", "health", "base")


def render(endpoint: Endpoint, workers: ListEndpointWorkersResponse, catalog: dict[str, GpuType],
           drift: tuple[str, ...] | None) -> str:
    """The status block of one endpoint; ``drift`` = the fields that differ from endpoint.toml (None: not
    compared)."""
    if drift is None:
        state = "deployed (not compared with endpoint.toml: set REGISTRY, and TAG unless it is dev)"
    elif drift:
        state = f"deployed, differs from endpoint.toml in {', '.join(drift)} (run make deploy)"
    else:
        state = "deployed, matches endpoint.toml"
    lines = [f"{endpoint.name} ({endpoint.id}): {state}", f"  image: {endpoint.image}"]
    if endpoint.gpu is not None:
        gpu = endpoint.gpu
        allowed = sorted(t.id for t in catalog.values() if t.pool in gpu.pools and t.id not in gpu.excluded_types)
        cuda = (f", CUDA >= {gpu.min_cuda_version}" if gpu.min_cuda_version
                else f", CUDA in {gpu.allowed_cuda_versions}" if gpu.allowed_cuda_versions else "")
        types = ", ".join(allowed) or "no known type"
        lines.append(f"  gpu: {gpu.count} x pools {', '.join(gpu.pools)} ({types}){cuda}")
    in_use = Counter(w.gpu_type_id for w in workers.workers if w.gpu_type_id)
    if in_use:
        lines.append("  gpu in use: " + ", ".join(f"{t} x {n}" for t, n in sorted(in_use.items())))
    summary = workers.summary
    lines.append(f"  workers: {summary.total} ({summary.running} running, {summary.idle} idle, "
                 f"{summary.initializing} initializing, {summary.throttled} throttled, "
                 f"{summary.unhealthy} unhealthy); min {endpoint.workers.min}, max {endpoint.workers.max}")
    unhealthy = [w.id for w in workers.workers if w.status == "UNHEALTHY"]
    if unhealthy:
        lines.append(f"  unhealthy: {', '.join(unhealthy)}")
    stale = [w.id for w in workers.workers if w.is_stale]
    if stale:
        lines.append(f"  on an older release (rolling out): {', '.join(stale)}")
    for key in _URLS:
        if key in endpoint.request_urls:
            lines.append(f"  {key}: {endpoint.request_urls[key]}")
    return "\n".join(lines)
