#!/usr/bin/env bash
# Prepare this machine (as root) to run local container hosts and the tests:
# Debian packages, podman serving the Docker API, the base image, the venv.
# Safe to run again: every step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."

# A base image per Debian release the local hosts run: trixie (13, PostgreSQL
# 17) is the default, bookworm (12, PostgreSQL 15) is still supported.
RELEASES=(trixie bookworm)
BASE_IMAGE=${ONESIFT_BASE_IMAGE:-localhost/onesift-base}
# The app's side of the contract test (tests/contract): Debian's nodejs and
# node-pg. This machine's own node comes from elsewhere and Debian's node-pg
# cannot install beside it, so they live in an image of their own.
NODE_IMAGE=${ONESIFT_NODE_IMAGE:-localhost/onesift-node:bookworm}
SOCK=/run/podman/podman.sock
# catatonit: the init containers run as PID 1. pgbouncer: the transaction-mode
# pooler the isolation tests put in front of a host.
PKGS=(podman runc catatonit debootstrap postgresql-client openssh-client pgbouncer)

log() { printf '[setup] %s\n' "$*" >&2; }

install_packages() {
    local missing=()
    for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

configure_podman() {
    # crun fails on these machines; runc works. Explicit ulimits because the
    # default (host) limits are refused inside the sandbox.
    mkdir -p /etc/containers
    if ! grep -q 'runtime = "runc"' /etc/containers/containers.conf 2>/dev/null; then
        log "writing /etc/containers/containers.conf"
        cat > /etc/containers/containers.conf <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
CONF
    fi
}

start_podman_service() {
    if [ -n "${DOCKER_HOST:-}" ] && [ "$DOCKER_HOST" != "unix://$SOCK" ]; then
        log "DOCKER_HOST=$DOCKER_HOST is set: using that engine"
        return
    fi
    if command -v dockerd >/dev/null && docker info >/dev/null 2>&1; then
        log "a Docker engine answers: using it"
        return
    fi
    if ! DOCKER_HOST=unix://$SOCK docker version >/dev/null 2>&1; then
        log "starting podman API service on $SOCK"
        mkdir -p /run/podman
        nohup podman system service --time=0 "unix://$SOCK" >/var/log/podman-service.log 2>&1 &
        for _ in $(seq 50); do
            DOCKER_HOST=unix://$SOCK docker version >/dev/null 2>&1 && break
            sleep 0.2
        done
    fi
}

engine() {
    # podman where it serves the API here; a real Docker engine otherwise.
    if command -v podman >/dev/null && [ "${DOCKER_HOST:-unix://$SOCK}" = "unix://$SOCK" ]; then
        podman "$@"
    else
        docker "$@"
    fi
}

build_base_image() {
    local release=$1 image=$BASE_IMAGE:$1 root
    engine image inspect "$image" >/dev/null 2>&1 && return
    root=$(mktemp -d /var/tmp/onesift-rootfs.XXXXXX)
    log "debootstrap $release into $root (about a minute)"
    # openssh-server so a container can be an SSH host (the prod path);
    # python3 for testinfra's file/socket modules. Not cron: the deploy
    # installs it, and debootstrap left trixie's cron-daemon-common
    # unconfigured (its systemd-sysusers alternative unresolved), which broke
    # every later apt-get install.
    debootstrap --variant=minbase \
        --include=openssh-server,python3,ca-certificates,procps,iproute2,less \
        "$release" "$root" >"/var/log/onesift-debootstrap-$release.log" 2>&1
    # The host's apt settings about stale snapshots apply inside too.
    cp /etc/apt/apt.conf.d/* "$root/etc/apt/apt.conf.d/" 2>/dev/null || true
    rm -f "$root"/etc/ssh/ssh_host_*
    log "import -> $image"
    tar -C "$root" -c . | engine import --change 'CMD ["sleep","infinity"]' - "$image" >/dev/null
    rm -rf "$root"
}
build_node_image() {
    engine image inspect "$NODE_IMAGE" >/dev/null 2>&1 && return
    log "apt-get install nodejs node-pg -> $NODE_IMAGE"
    engine rm -f onesift-node-build >/dev/null 2>&1 || true
    engine run --name onesift-node-build "$BASE_IMAGE:bookworm" sh -c \
        'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs node-pg' \
        >/var/log/onesift-node-image.log 2>&1
    engine commit --change 'CMD ["node"]' onesift-node-build "$NODE_IMAGE" >/dev/null
    engine rm onesift-node-build >/dev/null
}

make_venv() {
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
    log "pip install -e .[test]"
    .venv/bin/pip install -q -e '.[test]'
}

install_packages
configure_podman
start_podman_service
for release in "${RELEASES[@]}"; do build_base_image "$release"; done
build_node_image
make_venv
log "ready"
