"""
An inventory naming a container that is missing or stopped is refused by
`ops` and by `pyinfra ... deploy.py`: pyinfra's docker connector would
otherwise `docker run` an image of that name, or start the stopped container
and then commit and remove it on disconnect. Needs a Docker API (podman here)
and the base image, no onesift host.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from onesift.render import ROOT
from onesift.local_hosts import BASE_IMAGE as REPOSITORY
from onesift.platform import RELEASES
from onesift.local_hosts import docker_env

BASE_IMAGE = f"{REPOSITORY}:{RELEASES[0]}"  # the default release's

ENV = docker_env()


def engine(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, env=ENV, timeout=60)


def engine_ok() -> bool:
    try:
        return engine("image", "exists", BASE_IMAGE).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = pytest.mark.skipif(not engine_ok(), reason=f"needs podman and {BASE_IMAGE}")


def ids(kind: str) -> set[str]:
    return set(engine(kind, "-a" if kind == "ps" else "--all", "-q", "--no-trunc").stdout.split())


def state_of(name: str) -> str:
    return engine("container", "inspect", "--format", "{{.State.Status}}", name).stdout.strip()


@pytest.fixture
def container():
    """A unique h2- container name, removed afterwards with any untagged image made meanwhile (a commit)."""
    name = f"h2-{uuid.uuid4().hex[:8]}"
    images = ids("images")
    yield name
    engine("rm", "-f", name)
    for image in ids("images") - images:
        if engine("image", "inspect", "--format", "{{len .RepoTags}}", image).stdout.strip() == "0":
            engine("rmi", "-f", image)


def inventory(tmp_path, name: str):
    path = tmp_path / "h2_inventory.py"
    path.write_text(f'h2 = [("@docker/{name}", {{}})]\n')
    return path


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=300)


OPS = [sys.executable, "-m", "ops_cli.main", "tenant", "list", "-i"]
DEPLOY = [sys.executable, "-m", "pyinfra", "-y"]


def assert_one_line_refusal(out: subprocess.CompletedProcess, name: str) -> None:
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, out.stdout + out.stderr
    assert len(lines) == 1 and name in lines[0] and "Traceback" not in out.stderr, out.stderr


def test_ops_refuses_a_missing_container(tmp_path, container):
    before = ids("ps"), ids("images")
    out = run([*OPS, str(inventory(tmp_path, container))])
    assert_one_line_refusal(out, container)
    assert "does not exist" in out.stderr and "ops host up" in out.stderr
    assert (ids("ps"), ids("images")) == before


def test_ops_refuses_a_stopped_container_and_leaves_it_stopped(tmp_path, container):
    assert engine("create", "--name", container, BASE_IMAGE, "sleep", "infinity").returncode == 0
    before = ids("ps"), ids("images")
    out = run([*OPS, str(inventory(tmp_path, container))])
    assert_one_line_refusal(out, container)
    assert "not running" in out.stderr
    assert state_of(container) in ("created", "exited")
    assert (ids("ps"), ids("images")) == before


@pytest.mark.parametrize("stopped", [False, True], ids=["missing", "stopped"])
def test_pyinfra_deploy_refuses_and_touches_no_container(tmp_path, container, stopped):
    if stopped:
        assert engine("create", "--name", container, BASE_IMAGE, "sleep", "infinity").returncode == 0
    before = ids("ps"), ids("images")
    out = run([*DEPLOY, str(inventory(tmp_path, container)), "deploy.py"])
    assert out.returncode != 0
    assert container in out.stderr + out.stdout and "ops host up" in out.stderr + out.stdout
    assert (ids("ps"), ids("images")) == before
    if stopped:
        assert state_of(container) in ("created", "exited")


def test_a_running_container_is_used(container, monkeypatch):
    """The guard refuses only what the connector would start or create."""
    from onesift.containers import container_problem

    for key in ("DOCKER_HOST",):
        if key in ENV:
            monkeypatch.setenv(key, ENV[key])
    assert engine("run", "-d", "--name", container, BASE_IMAGE, "sleep", "infinity").returncode == 0
    assert container_problem("docker", container) is None
    assert "does not exist" in container_problem("docker", f"{container}-absent")
