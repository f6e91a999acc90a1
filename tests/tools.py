"""Command-line tools the tests use that are not Python packages, installed on demand.

promtool (the Prometheus rule checker) and nginx (to check the VM site with
`nginx -t`) come from Debian's `prometheus` and `nginx` packages: downloaded
with apt-get and unpacked into `.tools/` (nothing is installed system-wide,
no daemon is started). On a machine without apt-get, the tests that need them
skip and say so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import REPO

TOOLS = REPO / ".tools"


def promtool() -> Path:
    return debian_tool("promtool", "prometheus", "usr/bin/promtool")


def nginx() -> Path:
    return debian_tool("nginx", "nginx", "usr/sbin/nginx")


def nginx_config(directory: Path, site: str) -> Path:
    """A main nginx.conf holding `site`, with every path it writes inside `directory`."""
    (directory / "site.conf").write_text(site)
    config = directory / "nginx.conf"
    config.write_text(
        f"pid {directory}/nginx.pid;\nerror_log {directory}/error.log;\nevents {{}}\n"
        "http {\n  access_log off;\n"
        + "".join(
            f"  {kind}_temp_path {directory}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + f"  include {directory}/site.conf;\n}}\n"
    )
    return config


def debian_tool(command: str, package: str, path: str) -> Path:
    """`command` from PATH, or unpacked from Debian's `package` into .tools/ (no maintainer scripts run)."""
    found = shutil.which(command)
    if found:
        return Path(found)
    unpacked = TOOLS / package / path
    if not unpacked.exists():
        _unpack_debian_package(package, TOOLS / package)
    if not unpacked.exists():
        pytest.skip(f"{command} is not installed and Debian's {package} package could not be unpacked")
    return unpacked


def _unpack_debian_package(package: str, into: Path) -> None:
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        pytest.skip(f"{package}: no apt-get/dpkg-deb on this machine to fetch it with")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with tempfile.TemporaryDirectory() as download:
        fetched = subprocess.run(["apt-get", "download", package], cwd=download, env=env, capture_output=True)
        if fetched.returncode != 0 and os.geteuid() == 0:  # the package lists may be missing or stale
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
            fetched = subprocess.run(["apt-get", "download", package], cwd=download, env=env, capture_output=True)
        debs = list(Path(download).glob(f"{package}_*.deb"))
        if fetched.returncode != 0 or not debs:
            pytest.skip(f"apt-get download {package} failed: {fetched.stderr.decode(errors='replace')[-300:]}")
        into.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(into)], check=True)
