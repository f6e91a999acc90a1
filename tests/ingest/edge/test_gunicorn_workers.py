"""gunicorn's default worker count follows the container's CPU quota, not the host's cores.

The cgroup files are real files in a temporary directory laid out as the kernel
lays out /sys/fs/cgroup (v2 `cpu.max`, v1 `cpu/cpu.cfs_quota_us` and `cfs_period_us`).
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from helpers import REPO


@pytest.fixture
def config(monkeypatch, tmp_path):
    """services/ingest/gunicorn.conf.py, loaded as gunicorn loads it (its metrics directory kept out of os.environ)."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    spec = importlib.util.spec_from_file_location("gunicorn_conf", REPO / "services" / "ingest" / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))  # a 64-core node
    return module


def write(root, files: dict[str, str]):
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize(
    "files, quota, cores",
    [
        ({"cpu.max": "150000 100000\n"}, 1.5, 2),  # cgroup v2, 1.5 CPUs: two cores' worth
        ({"cpu.max": "100000 100000\n"}, 1.0, 1),
        ({"cpu.max": "max 100000\n"}, None, 64),  # v2, unlimited: the CPUs it may run on
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0, 2),  # v1
        ({"cpu,cpuacct/cpu.cfs_quota_us": "50000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 0.5, 1),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None, 64),  # v1, unlimited
        ({"cpu.max": "1000000 100000\n"}, 10.0, 10),
        ({}, None, 64),  # no cgroup files (not Linux, or not mounted)
    ],
)
def test_cores_follow_the_cgroup_quota(config, tmp_path, files, quota, cores):
    root = write(tmp_path / "cgroup", files)
    root.mkdir(exist_ok=True)
    assert config.cpu_quota(root) == quota
    assert config.available_cores(root) == cores


def test_a_quota_above_the_cpus_it_may_run_on_counts_those(config, tmp_path, monkeypatch):
    root = write(tmp_path, {"cpu.max": "800000 100000\n"})
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert config.available_cores(root) == 2


def test_the_default_worker_count_uses_the_quota(monkeypatch, tmp_path):
    """The module-level `workers` gunicorn reads: 2 x cores + 1 of the quota, or GUNICORN_WORKERS."""
    root = write(tmp_path / "cgroup", {"cpu.max": "200000 100000\n"})
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    path = REPO / "services" / "ingest" / "gunicorn.conf.py"
    source = path.read_text().replace('Path("/sys/fs/cgroup")', repr(str(root)).join(("Path(", ")")))
    namespace: dict = {"__file__": str(path)}
    exec(compile(source, str(path), "exec"), namespace)
    assert namespace["workers"] == 5
    monkeypatch.setenv("GUNICORN_WORKERS", "3")
    exec(compile(source, str(path), "exec"), namespace)
    assert namespace["workers"] == 3


@pytest.mark.parametrize(("setting", "worker"), [(None, "GunicornUVLoopWebWorker"), ("asyncio", "GunicornWebWorker")])
def test_the_workers_run_on_the_event_loop_the_settings_name(monkeypatch, tmp_path, setting, worker):
    """As `hookyard-ingest` does (runner.loop_factory): uvloop unless HOOKYARD_EVENT_LOOP says asyncio."""
    from hookyard_common.core.settings import get_settings

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    if setting is None:
        monkeypatch.delenv("HOOKYARD_EVENT_LOOP", raising=False)
    else:
        monkeypatch.setenv("HOOKYARD_EVENT_LOOP", setting)
    get_settings.cache_clear()
    try:
        spec = importlib.util.spec_from_file_location(
            "gunicorn_conf", REPO / "services" / "ingest" / "gunicorn.conf.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        get_settings.cache_clear()
    assert module.worker_class == f"aiohttp.{worker}"
