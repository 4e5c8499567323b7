"""The platform a deploy targets (issue 11): the Debian release read from the host and its PostgreSQL."""

import pytest

from onesift.platform import pg_version_for, release_of
from onesift.settings import BadInput


def debian(codename: str) -> dict:
    return {"name": "Debian", "major": 13, "minor": None, "release_meta": {"VERSION_CODENAME": codename}}


@pytest.mark.parametrize("release, version", [("trixie", 17), ("bookworm", 15)])
def test_each_release_gets_its_own_postgresql(release, version):
    assert pg_version_for(release_of(debian(release)), None) == version
    assert pg_version_for(release, version) == version


def test_a_version_the_release_does_not_package_is_refused():
    with pytest.raises(BadInput, match="pg_version = 15, but Debian trixie packages PostgreSQL 17 only"):
        pg_version_for("trixie", 15)


@pytest.mark.parametrize("distribution", [debian("bullseye"), {"name": "Ubuntu", "release_meta": {"VERSION_CODENAME": "noble"}}, {}])
def test_another_release_is_refused_naming_the_supported_ones(distribution):
    with pytest.raises(BadInput, match=r"supported: trixie \(PostgreSQL 17\), bookworm \(PostgreSQL 15\)"):
        pg_version_for(release_of(distribution), None)


def test_a_cluster_of_another_version_stops_the_deploy_before_it_adds_a_second_server():
    from deploy.server import other_clusters_problem

    old = [{"version": 15, "cluster": "main", "port": 5432, "status": "online"}]
    problem = other_clusters_problem(old, 17, "db1")
    assert problem.startswith("db1 has PostgreSQL cluster 15/main (online), and this deploy installs PostgreSQL 17:")
    assert "pg_upgradecluster 15 main" in problem
    assert other_clusters_problem(old, 15) is None
    assert other_clusters_problem([], 17) is None
