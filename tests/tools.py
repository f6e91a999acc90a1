"""Command-line tools the tests use that are not Python packages, installed on demand.

promtool (the Prometheus rule checker) and nginx (to check the VM site with
`nginx -t`) come from Debian's `prometheus` and `nginx` packages: downloaded
with apt-get and unpacked into `.tools/` (nothing is installed system-wide,
no daemon is started). openssl, systemd-analyze and Chromium (with its
driver) are installed with apt-get as root when they are missing, as
`devstack.ensure_rabbitmq_installed` installs RabbitMQ. `make test` runs this
module first (`python tests/tools.py`), so every tool is in place before the
suite starts; each step does nothing when its tool is already there.

A tool that still cannot be had goes through `unavailable`: the test skips
on a developer's machine, and fails where HOOKYARD_REQUIRE_TOOLS=1 (`.ci/run`
sets it), so CI never passes by skipping what it was meant to check.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

import pytest

from helpers import REPO

TOOLS = REPO / ".tools"
#: CI's switch: a missing tool fails the test that needs it instead of skipping it.
REQUIRE_TOOLS = "HOOKYARD_REQUIRE_TOOLS"
CHROMIUM_PACKAGES = ("chromium", "chromium-driver")


def unavailable(reason: str) -> NoReturn:
    """Skip the test for want of a tool, or fail it when HOOKYARD_REQUIRE_TOOLS=1."""
    if os.environ.get(REQUIRE_TOOLS) == "1":
        pytest.fail(f"{reason} ({REQUIRE_TOOLS}=1: a missing tool fails the test)", pytrace=False)
    pytest.skip(reason)


def promtool() -> Path:
    return debian_tool("promtool", "prometheus", "usr/bin/promtool")


def nginx() -> Path:
    return debian_tool("nginx", "nginx", "usr/sbin/nginx")


def openssl() -> Path:
    return system_tool("openssl", ("openssl",))


def systemd_analyze() -> Path:
    return system_tool("systemd-analyze", ("systemd",))


def chromium() -> tuple[Path, Path]:
    """(chromium, chromedriver): Debian's packages, never a browser downloaded from elsewhere."""
    return system_tool("chromium", CHROMIUM_PACKAGES), system_tool("chromedriver", CHROMIUM_PACKAGES)


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


def system_tool(command: str, packages: tuple[str, ...]) -> Path:
    """`command` from PATH, else Debian's `packages` installed with apt-get (as root) first."""
    found = shutil.which(command)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = _apt_env()
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *packages], env=env, check=True, capture_output=True)
        found = shutil.which(command)
    if found is None:
        unavailable(f"{command} is not installed: apt-get install {' '.join(packages)}")
    return Path(found)


def debian_tool(command: str, package: str, path: str) -> Path:
    """`command` from PATH, or unpacked from Debian's `package` into .tools/ (no maintainer scripts run)."""
    found = shutil.which(command)
    if found:
        return Path(found)
    unpacked = TOOLS / package / path
    if not unpacked.exists():
        _unpack_debian_package(package, TOOLS / package)
    if not unpacked.exists():
        unavailable(f"{command} is not installed and Debian's {package} package could not be unpacked")
    return unpacked


def _apt_env() -> dict[str, str]:
    return {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}


def _unpack_debian_package(package: str, into: Path) -> None:
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        unavailable(f"{package}: no apt-get/dpkg-deb on this machine to fetch it with")
    env = _apt_env()
    with tempfile.TemporaryDirectory() as download:
        fetched = subprocess.run(["apt-get", "download", package], cwd=download, env=env, capture_output=True)
        if fetched.returncode != 0 and os.geteuid() == 0:  # the package lists may be missing or stale
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
            fetched = subprocess.run(["apt-get", "download", package], cwd=download, env=env, capture_output=True)
        debs = list(Path(download).glob(f"{package}_*.deb"))
        if fetched.returncode != 0 or not debs:
            unavailable(f"apt-get download {package} failed: {fetched.stderr.decode(errors='replace')[-300:]}")
        into.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(into)], check=True)


def main() -> int:
    """Put every tool in place (what `make test` runs first); non-zero if one is missing under the switch."""
    for tool in (promtool, nginx, openssl, systemd_analyze, chromium):
        try:
            found = tool()
            print(f"{tool.__name__}: {' '.join(map(str, found)) if isinstance(found, tuple) else found}")
        except pytest.skip.Exception as missing:
            print(f"{tool.__name__}: {missing.msg}", file=sys.stderr)
        except pytest.fail.Exception as missing:
            print(f"{tool.__name__}: {missing.msg}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
