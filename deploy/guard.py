"""
onesift_guard (extension/onesift_guard): the module that makes onesift.tenant
a parameter only the owner may set. Built on the host with PostgreSQL's PGXS
and loaded with shared_preload_libraries (templates/config/postgresql.conf.j2).
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import apt, files, server

from deploy import platform
from onesift.render import ROOT, checksum
from onesift.settings import Settings

MODULE = "onesift_guard"
SOURCE = ROOT / "extension" / MODULE
SOURCE_FILES = ("onesift_guard.c", "Makefile")
BUILD_DIR = f"/usr/local/src/{MODULE}"


def build_packages(settings: Settings) -> list[str]:
    # PGXS and the server headers come with postgresql-server-dev-N; it also
    # pulls in clang and LLVM (139 MB with gcc, ~70 s on a container host
    # here), which the build itself skips (with_llvm=no, see the Makefile).
    return [f"postgresql-server-dev-{settings.pg_version}", "gcc", "make", "libc6-dev"]


def library(settings: Settings) -> str:
    return f"/usr/lib/postgresql/{settings.pg_version}/lib/{MODULE}.so"


def source_checksum() -> str:
    """Of the module's sources: rendered into postgresql.conf, so a changed module restarts the server."""
    return checksum("".join((SOURCE / name).read_text() for name in SOURCE_FILES))


@deploy("onesift_guard module")
def install():
    settings = platform.settings()
    apt.packages(name="Install the module's build tools", packages=build_packages(settings), no_recommends=True)
    for name in SOURCE_FILES:
        files.put(name=f"Upload {name}", src=str(SOURCE / name), dest=f"{BUILD_DIR}/{name}",
                  user="root", group="root", mode="644", create_remote_dir=True)
    # A stamp named by the sources and the server version, written only after
    # a good install: an interrupted build is done again on the next run.
    stamp = f"{BUILD_DIR}/installed-{settings.pg_version}-{source_checksum()}"
    if not host.get_fact(File, path=stamp) or not host.get_fact(File, path=library(settings)):
        pg_config = f"/usr/lib/postgresql/{settings.pg_version}/bin/pg_config"
        server.shell(
            name=f"Build and install {MODULE}",
            commands=[f"make -C {BUILD_DIR} with_llvm=no PG_CONFIG={pg_config} install >/dev/null "
                      f"&& rm -f {BUILD_DIR}/installed-* && touch {stamp}"],
        )
