"""The CLI as its own distribution: built, installed into an empty venv, and run there; its settings and exit codes."""

import asyncio
import os
import pty
import shutil
import signal
import subprocess
import sys

import pytest
from aiohttp import web

from cli_process import cli_env, run_cli
from helpers import BIN, REPO
from hookyard_cli import dev, stack_status
from hookyard_cli.devstack import free_port
from hookyard_common.core.settings import Settings

UV = REPO / ".tools/bin/uv" if (REPO / ".tools/bin/uv").exists() else shutil.which("uv")
IMPORT_ALL = (
    "import pkgutil, sys, hookyard_cli\n"
    "for m in pkgutil.iter_modules(hookyard_cli.__path__): __import__('hookyard_cli.' + m.name)\n"
    "print(sorted({n.split('.')[0] for n in sys.modules if n.startswith('hookyard')}))\n"
)


def test_the_wheel_installs_into_an_empty_venv_and_runs_without_the_services(tmp_path):
    assert UV, "uv is installed by `make install`"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run([UV, "build", "--wheel", "-q", str(REPO / "cli"), "-o", tmp_path / "dist"], check=True, env=env)
    (wheel,) = (tmp_path / "dist").glob("hookyard_cli-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([UV, "venv", "-q", str(venv), "--python", sys.executable], check=True, env=env)
    python = str(venv / "bin/python")
    subprocess.run([UV, "pip", "install", "-q", "--python", python, str(wheel)], check=True, env=env)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(args, capture_output=True, text=True, timeout=60, env=cli_env(tmp_path / "state"))

    version = run(str(venv / "bin/hookyard"), "--version")
    assert version.returncode == 0 and version.stdout.strip() == "hookyard 0.1.0", version
    # Every module of the CLI imports there, and brings in nothing of the services'.
    modules = run(python, "-c", IMPORT_ALL)
    assert modules.returncode == 0 and modules.stdout.strip() == "['hookyard_cli']", modules
    server = run(python, "-c", "import hookyard_common")
    assert server.returncode == 1 and "No module named 'hookyard_common'" in server.stderr
    completion = run(str(venv / "bin/hookyard"), "completion", "bash")
    assert completion.returncode == 0 and "complete " in completion.stdout and "hookyard" in completion.stdout


def test_status_reads_the_services_defaults_and_variables():
    defaults = Settings.model_construct()
    assert {
        "AMQP_URL": defaults.amqp_url,
        "MONGO_URI": defaults.mongo_uri,
        "HOOKYARD_HTTP_HOST": defaults.http_host,
    } == stack_status.DEFAULTS
    assert {name: defaults.service_port(name) for name in dev.SERVICES} == dev.DEFAULT_PORTS


async def test_exit_codes_tell_usage_connection_api_errors_and_interrupts(platform, tmp_path):
    key = await platform.tenant()
    env = cli_env(tmp_path, platform.base, key)
    code, _, err = await run_cli("sources", "create", "--provider", "meta", "--option", "no-equals", env=env)
    assert code == 2 and "is not key=value" in err, err
    code, _, err = await run_cli("messages", "tail", "--no-follow", env=cli_env(tmp_path, platform.base))
    assert code == 2 and "no API key" in err, err
    code, _, err = await run_cli(
        "messages", "tail", "--no-follow", env=cli_env(tmp_path, f"http://127.0.0.1:{free_port()}", key)
    )
    assert code == 3 and "cannot reach the ingest" in err, err
    code, _, err = await run_cli("listen", "--source", "../../x", "--forward-to", "http://127.0.0.1:9/", env=env)
    assert code == 2 and "is not a source or endpoint id" in err, err
    broken = tmp_path / "xdg-config/hookyard/config.toml"
    broken.parent.mkdir(parents=True)
    broken.write_text("[profiles.default\nurl = ")
    code, _, err = await run_cli("messages", "tail", "--no-follow", env=cli_env(tmp_path))
    assert code == 2 and f"{broken} is not a valid profile file" in err, err
    code, _, err = await run_cli("send-test", "--endpoint", "ep_nope", env=env)
    assert code == 4 and "HTTP 404" in err, err
    code, _, err = await run_cli("messages", "tail", "--no-follow", env=cli_env(tmp_path, platform.base, "hy_wrong"))
    assert code == 4 and "HTTP 401" in err, err

    # Interrupted while waiting on an ingest that never answers: 130.
    asked = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        asked.set()
        await asyncio.sleep(60)
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hang)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        process = await asyncio.create_subprocess_exec(
            str(BIN / "hookyard"),
            "send-test",
            "--endpoint",
            "ep_x",
            env=cli_env(tmp_path, f"http://127.0.0.1:{port}", key),
            stderr=asyncio.subprocess.PIPE,
        )
        await asyncio.wait_for(asked.wait(), 30)
        process.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode == 130 and b"interrupted" in err, err
    finally:
        await runner.cleanup()


def _status_on_a_terminal(env: dict[str, str]) -> str:
    """`hookyard status` with its stdout on a pseudo-terminal, as a person sees it."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([str(BIN / "hookyard"), "status"], stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(30)
    os.close(leader)
    return b"".join(chunks).decode()


@pytest.mark.parametrize("no_color", [None, "1"])
def test_status_honours_no_color_on_a_terminal(settings, tmp_path, no_color):
    env = cli_env(
        tmp_path, AMQP_URL=settings.amqp_url, MONGO_URI=settings.mongo_uri, HOOKYARD_INGEST_PORT=str(free_port())
    )
    if no_color:
        env["NO_COLOR"] = no_color
    out = _status_on_a_terminal(env)
    assert "rabbitmq" in out and "NOT READY" in out, out
    assert ("\033[" in out) is (no_color is None), out
