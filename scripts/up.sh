#!/usr/bin/env bash
# Command 1 of 2: prepare this machine, bring up the local dev host, deploy
# the database onto it and seed it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-machine.sh
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/podman/podman.sock}
exec .venv/bin/ops host up dev "$@"
