#!/usr/bin/env bash
# Command 2 of 2: every test. Unit and operation tests first (no host), then
# the end-to-end tests, which bring up (or reuse) the local container hosts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-machine.sh
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/podman/podman.sock}
exec .venv/bin/pytest "$@"
