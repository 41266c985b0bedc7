#!/usr/bin/env bash
# A private Docker engine for CI on a machine with no engine and no image registry reachable:
#   docker-engine.sh install   apt packages + buildx and a newer dockerd unpacked from Debian testing
#   docker-engine.sh start     dockerd and a local registry (127.0.0.1:5000) in the background
#   docker-engine.sh stop      stop both, by the PIDs that `start` recorded
#   docker-engine.sh env       print the exports a caller evals to use this engine
# Everything lives under $CI_DOCKER_DIR (kept across runs where the machine is kept: the engine's
# data root then holds the stand-in bases and the build cache). Why this way: see docs/images.md.
set -euo pipefail

W=${CI_DOCKER_DIR:-/var/tmp/ci-docker}
REGISTRY_ADDR=${CI_REGISTRY_ADDR:-127.0.0.1:5000}
# Debian testing moves: the suite is pinned by name and the versions seen working are checked.
TESTING_SUITE=${CI_DOCKER_SUITE:-forky}

log() { printf '[docker-engine] %s\n' "$*" >&2; }

print_env() {
    cat <<EOF
export PATH="$W/bin:\$PATH"
export DOCKER_HOST="unix://$W/docker.sock"
export DOCKER_CONFIG="$W/config"
export BUILDX_NO_DEFAULT_ATTESTATIONS=1
EOF
}

install() {
    mkdir -p "$W"/{bin,config/cli-plugins,apt/lists/partial,apt/cache/archives/partial,debs}
    if ! command -v containerd >/dev/null || ! command -v debootstrap >/dev/null \
        || ! command -v docker-registry >/dev/null; then
        log "apt: docker.io (containerd, runc), debootstrap, docker-registry"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            docker.io debootstrap docker-registry ca-certificates >/dev/null
    fi
    # The registry package starts its own service where an init system runs; ours is started below.
    if [ -x "$W/bin/dockerd" ] && [ -x "$W/config/cli-plugins/docker-buildx" ]; then
        return
    fi
    local mirror
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    echo "deb $mirror $TESTING_SUITE main" >"$W/apt/sources.list"
    local apt_opts=(-o "Dir::Etc::sourcelist=$W/apt/sources.list" -o Dir::Etc::sourceparts=-
        -o "Dir::State::Lists=$W/apt/lists" -o "Dir::Cache=$W/apt/cache" -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
    log "apt ($TESTING_SUITE): downloading docker-buildx and docker.io (dockerd 28)"
    apt-get "${apt_opts[@]}" update -qq
    (cd "$W/debs" && apt-get "${apt_opts[@]}" download docker-buildx docker.io >/dev/null)
    local deb
    for deb in "$W"/debs/*.deb; do
        dpkg-deb -x "$deb" "$W/root"
    done
    ln -sf "$W/root/usr/sbin/dockerd" "$W/bin/dockerd"
    ln -sf "$W/root/usr/bin/docker" "$W/bin/docker"
    [ -e "$W/root/usr/bin/docker-proxy" ] && ln -sf "$W/root/usr/bin/docker-proxy" "$W/bin/docker-proxy"
    ln -sf "$W/root/usr/libexec/docker/cli-plugins/docker-buildx" "$W/config/cli-plugins/docker-buildx"
    log "$("$W/bin/dockerd" --version); buildx $("$W/config/cli-plugins/docker-buildx" version | awk '{print $2}')"
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
    eval "$(print_env)"
    mkdir -p "$W"/{data,exec,registry}
    if ! running "$W/dockerd.pid"; then
        log "starting dockerd (overlay2, no bridge, no iptables)"
        # setsid: its own process group, so `stop` ends it and only it.
        setsid "$W/bin/dockerd" --data-root "$W/data" --exec-root "$W/exec" --pidfile "$W/dockerd.pid.own" \
            --storage-driver=overlay2 --iptables=false --ip6tables=false --bridge=none \
            -H "unix://$W/docker.sock" >"$W/dockerd.log" 2>&1 &
        echo $! >"$W/dockerd.pid"
    fi
    if ! running "$W/registry.pid"; then
        # Kept across runs (unchanged layers are not pushed again) unless it has grown past 20 GB.
        if [ "$(du -sm "$W/registry" | cut -f1)" -gt 20000 ]; then
            rm -rf "$W/registry" && mkdir -p "$W/registry"
        fi
        log "starting the local registry on $REGISTRY_ADDR"
        cat >"$W/registry.yml" <<EOF
version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: $W/registry }, delete: { enabled: true } }
http: { addr: $REGISTRY_ADDR }
EOF
        setsid docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
        echo $! >"$W/registry.pid"
    fi
    local i
    for i in $(seq 1 100); do
        if docker version >/dev/null 2>&1 && curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then
            log "engine $(docker version -f '{{.Server.Version}}') and registry ready"
            return
        fi
        sleep 0.2
    done
    log "engine or registry did not come up; logs:"
    tail -n 30 "$W/dockerd.log" "$W/registry.log" >&2
    return 1
}

stop_one() {
    local pidfile=$1 pid i
    running "$pidfile" || { rm -f "$pidfile"; return 0; }
    pid=$(cat "$pidfile")
    kill -TERM "$pid"
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    rm -f "$pidfile"
}

stop() {
    stop_one "$W/registry.pid"
    stop_one "$W/dockerd.pid"
    # dockerd runs its own containerd as a child, which stops with it; the mounts it leaves behind (its
    # network namespace, its data root) would block removing $W: unmount them, deepest first.
    awk -v w="$W" '$2 ~ "^" w "/(exec|data)(/|$)" {print $2}' /proc/mounts | sort -r | xargs -r umount -l
    log "engine and registry stopped"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    env) print_env ;;
    *) echo "usage: $0 install|start|stop|env" >&2; exit 2 ;;
esac
