"""`make up` / `make down`: the whole platform on this machine.

    python -m hookyard_cli.dev up     # dependencies + the four services  (also `hookyard up`)
    python -m hookyard_cli.dev down   # stops exactly what `up` started   (also `hookyard down`)
    hookyard logs [SERVICE ...] [-n 50] [-f]

State lives in `.hookyard/` (or `HOOKYARD_STATE_DIR`): PID files, logs,
data, and `env`, the settings every `hookyard` command reads (connection
URLs, the admin token, and an API key saved by `hookyard tenants create --save`).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import urllib.request
from pathlib import Path

from hookyard_cli import log_files
from hookyard_cli.devstack import (
    DEFAULT_RABBIT_PORTS,
    InfraError,
    LocalMongo,
    LocalRabbitMQ,
    ManagedProcess,
    docker_available,
    wait_for,
)

SERVICES = ("ingest", "dispatcher", "retrier", "heartbeat")
DEFAULT_PORTS = {"ingest": 8000, "dispatcher": 8001, "retrier": 8002, "heartbeat": 8003}
COMPOSE_URLS = {
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/",
    "mongo": "mongodb://127.0.0.1:27017/?directConnection=true",
}
#: docker-compose.yml's RabbitMQ management API, where the console's operator view reads queue figures.
COMPOSE_MANAGEMENT_URL = "http://guest:guest@127.0.0.1:15672/"


def state_dir() -> Path:
    return Path(os.environ.get("HOOKYARD_STATE_DIR", ".hookyard")).resolve()


def read_env_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs}


def update_env_file(path: Path, values: dict[str, str]) -> None:
    """Set `values` in an env file, keeping its other lines."""
    merged = {**read_env_file(path), **values}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{key}={value}\n" for key, value in merged.items()))


def _compose(*args: str) -> None:
    subprocess.run(["docker", "compose", *args], check=True)


def _service_port(name: str) -> int:
    return int(os.environ.get(f"HOOKYARD_{name.upper()}_PORT", DEFAULT_PORTS[name]))


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def up() -> int:
    state = state_dir()
    state.mkdir(parents=True, exist_ok=True)
    run_dir = state / "run"
    env = dict(os.environ)
    printed: list[tuple[str, str]] = []
    rabbit = LocalRabbitMQ(state / "rabbitmq", DEFAULT_RABBIT_PORTS, run_dir)
    mongo = LocalMongo(state / "mongodb", 27017, run_dir)

    if any(ManagedProcess(name, run_dir).running() for name in SERVICES):
        print("Hookyard is already running here; `make down` first to restart it.")
        return 1

    missing = [dep for dep, var in (("rabbitmq", "AMQP_URL"), ("mongo", "MONGO_URI")) if not env.get(var)]
    if missing and docker_available():
        print(f"Starting {', '.join(missing)} with Docker Compose ...")
        _compose("up", "-d", "--wait", *missing)
        (state / "compose-services").write_text("\n".join(missing))
        for dep in missing:
            env["AMQP_URL" if dep == "rabbitmq" else "MONGO_URI"] = COMPOSE_URLS[dep]
        if "rabbitmq" in missing:
            env.setdefault("HOOKYARD_RABBITMQ_MANAGEMENT_URL", COMPOSE_MANAGEMENT_URL)
    else:
        if "rabbitmq" in missing:
            print("Starting RabbitMQ (local node) ...")
            rabbit.start()
            env["AMQP_URL"] = rabbit.url
            env.setdefault("HOOKYARD_RABBITMQ_MANAGEMENT_URL", rabbit.management_url.replace("://", "://guest:guest@"))
            printed.append(("RabbitMQ management", rabbit.management_url + "  (guest / guest)"))
        if "mongo" in missing:
            print("Starting MongoDB (SecantusDB, local process) ...")
            mongo.start()
            env["MONGO_URI"] = mongo.uri
    # A development admin token, so the newcomer can create a tenant at once.
    env.setdefault("HOOKYARD_ADMIN_TOKEN", "dev_" + secrets.token_urlsafe(24))
    # The development profile delivers to loopback (a receiver on the developer's
    # machine); production's default refuses every non-public address.
    env.setdefault("HOOKYARD_DELIVERY_ALLOWED_CIDRS", '["127.0.0.0/8", "::1/128"]')
    printed[:0] = [
        ("AMQP_URL", env["AMQP_URL"]),
        ("MONGO_URI", env["MONGO_URI"]),
        ("HOOKYARD_ADMIN_TOKEN", env["HOOKYARD_ADMIN_TOKEN"]),
    ]

    env["HOOKYARD_URL"] = f"http://127.0.0.1:{_service_port('ingest')}"
    # The console's operator view shows the other services' readiness from here.
    ready_urls = {name: f"http://127.0.0.1:{_service_port(name)}/readyz" for name in SERVICES if name != "ingest"}
    env.setdefault("HOOKYARD_SERVICE_READY_URLS", json.dumps(ready_urls))
    recorded = {key: env[key] for key in ("AMQP_URL", "MONGO_URI", "HOOKYARD_ADMIN_TOKEN", "HOOKYARD_URL")}
    # The ports too, so `hookyard status` checks the services where they really are.
    recorded.update({f"HOOKYARD_{name.upper()}_PORT": str(_service_port(name)) for name in SERVICES})
    update_env_file(state / "env", recorded)
    bin_dir = Path(sys.executable).parent
    for name in SERVICES:
        ManagedProcess(name, run_dir).start(
            [str(bin_dir / f"hookyard-{name}")], env=env, log_path=state / "logs" / f"{name}.log"
        )
    for name in SERVICES:
        port = _service_port(name)
        wait_for(
            lambda port=port: _ready(port),
            timeout=90,
            what=f"hookyard-{name}",
            process=ManagedProcess(name, run_dir),
            log=state / "logs" / f"{name}.log",
        )
        printed.append((f"hookyard-{name}", f"http://127.0.0.1:{port}/  (ready)"))
    printed.append(("console", f"{env['HOOKYARD_URL']}/console/  (sign in with HOOKYARD_ADMIN_TOKEN or an API key)"))

    print("\nHookyard is up:")
    width = max(len(label) for label, _ in printed)
    for label, value in printed:
        print(f"  {label.ljust(width)}  {value}")
    print(f"\nLogs: {state / 'logs'}/   Status: .venv/bin/hookyard status   Stop: make down")
    return 0


def down() -> int:
    state = state_dir()
    run_dir = state / "run"
    stopped = []
    # Services first, so they finish their in-flight work while the broker is still there.
    for name in (*SERVICES, "rabbitmq", "epmd", "mongodb"):
        process = ManagedProcess(name, run_dir)
        if process.recorded() is not None:
            if process.running():
                stopped.append(name)
            process.stop(timeout=60)
    compose_file = state / "compose-services"
    if compose_file.exists():
        services = compose_file.read_text().split()
        _compose("stop", *services)
        compose_file.unlink()
        stopped.append("docker compose: " + ", ".join(services))
    print("Stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def logs(names: list[str], lines: int, follow: bool) -> int:
    """The last `lines` of each service's log, then (with `follow`) what is added, prefixed by service."""
    names = names or list(SERVICES)
    unknown = sorted(set(names) - set(SERVICES))
    if unknown:
        print(f"error: no such service: {', '.join(unknown)} (one of {', '.join(SERVICES)})", file=sys.stderr)
        return 2
    paths = {name: state_dir() / "logs" / f"{name}.log" for name in names}
    if not any(path.exists() for path in paths.values()):
        print(f"error: no logs in {state_dir() / 'logs'}: has `make up` run here?", file=sys.stderr)
        return 2
    return log_files.show(paths, lines, follow)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hookyard_cli.dev")
    parser.add_argument("command", choices=("up", "down"))
    args = parser.parse_args(argv)
    if args.command == "down":
        return down()
    try:
        return up()
    except InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        down()  # leave nothing half-started behind
        return 2
    except BaseException:
        down()
        raise


if __name__ == "__main__":
    sys.exit(main())
