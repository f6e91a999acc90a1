"""Local infrastructure for development and tests: RabbitMQ, MongoDB and the services.

For each dependency the first that applies wins:
1. a URL already given (`AMQP_URL`, `MONGO_URI`): used as it is;
2. a Docker engine that answers: Docker Compose (`make up`) or testcontainers (tests);
3. a local server run as our own process: Debian's `rabbitmq-server` (installed
   with apt-get when missing and we are root), and SecantusDB, a
   MongoDB-wire-compatible server from the dev dependencies.

Everything started here is recorded with its PID and start time, so stopping
kills exactly those processes and nothing that merely reused a PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


def epmd_binary() -> Path | None:
    """Erlang's port mapper, installed with RabbitMQ."""
    found = sorted(Path("/usr/lib/erlang").glob("erts-*/bin/epmd"))
    return found[-1] if found else None


class InfraError(RuntimeError):
    """A dependency cannot be provided; the message says what to install or set."""


# ---------------------------------------------------------------- processes


def _start_time(pid: int) -> str | None:
    try:
        # Field 22 of /proc/PID/stat is the start time in clock ticks since boot.
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


@dataclass
class ManagedProcess:
    """A process we started in its own session, recorded in `<run_dir>/<name>.pid`."""

    name: str
    run_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    def start(self, argv: list[str], *, env: dict[str, str], log_path: Path, cwd: Path | None = None) -> int:
        if self.running():
            raise InfraError(f"{self.name} is already running (pid {self.pid})")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as a whole
            )
        self.pid_file.write_text(f"{proc.pid} {_start_time(proc.pid)}\n")
        self._popen = proc
        return proc.pid

    def recorded(self) -> tuple[int, str] | None:
        try:
            pid, started = self.pid_file.read_text().split()
        except (OSError, ValueError):
            return None
        return int(pid), started

    @property
    def pid(self) -> int:
        """The recorded process id, once started."""
        rec = self.recorded()
        if rec is None:
            raise InfraError(f"{self.name} has no pid file at {self.pid_file}")
        return rec[0]

    def running(self) -> bool:
        rec = self.recorded()
        return rec is not None and _start_time(rec[0]) == rec[1] and not _is_zombie(rec[0])

    def exited_early(self) -> bool:
        popen = getattr(self, "_popen", None)
        return popen is not None and popen.poll() is not None

    def stop(self, timeout: float = 30.0) -> None:
        rec = self.recorded()
        if rec is not None and self.running():
            pid = rec[0]
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.running():
                _reap(pid)
                time.sleep(0.1)
            if self.running():
                _signal_group(pid, signal.SIGKILL)
                while self.running():
                    _reap(pid)
                    time.sleep(0.05)
            # Children that outlived their leader (same process group) go too.
            _signal_group(pid, signal.SIGKILL)
            _reap(pid)
        self.pid_file.unlink(missing_ok=True)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # not our child: its own parent reaps it
        os.waitpid(pid, os.WNOHANG)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is already gone
        os.killpg(pid, sig)


# ---------------------------------------------------------------- helpers


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: all held open at once, so none is handed out twice."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(
    check, *, timeout: float, what: str, process: ManagedProcess | None = None, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if process is not None and process.exited_early():
            break
        time.sleep(0.2)
    tail = ""
    if log is not None and log.exists():
        tail = "\n  " + "\n  ".join(log.read_text(errors="replace").splitlines()[-15:])
    raise InfraError(f"{what} did not become ready within {timeout:.0f}s{tail}")


def docker_available() -> bool:
    if os.environ.get("HOOKYARD_NO_DOCKER") or shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# ---------------------------------------------------------------- RabbitMQ


def ensure_rabbitmq_installed() -> None:
    if RABBITMQ_SERVER.exists():
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("RabbitMQ is not installed; installing Debian's rabbitmq-server ...", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "rabbitmq-server"], check=True, env=env)
        if RABBITMQ_SERVER.exists():
            return
    raise InfraError(
        "No RabbitMQ available. Either set AMQP_URL to a running broker, start a Docker engine, "
        "or install RabbitMQ 3.10+ (Debian/Ubuntu: `sudo apt-get install rabbitmq-server`)."
    )


@dataclass
class RabbitPorts:
    amqp: int
    management: int
    prometheus: int
    distribution: int
    epmd: int

    @classmethod
    def free(cls) -> RabbitPorts:
        return cls(*free_ports(5))


DEFAULT_RABBIT_PORTS = RabbitPorts(5672, 15672, 15692, 25672, 4369)


class LocalRabbitMQ:
    """A RabbitMQ node of our own, with its data, logs and Erlang cookie under `home`."""

    def __init__(self, home: Path, ports: RabbitPorts, run_dir: Path, node: str = "hookyard"):
        self.home = home
        self.ports = ports
        self.node = f"{node}@localhost"
        self.server = ManagedProcess("rabbitmq", run_dir)
        self.epmd = ManagedProcess("epmd", run_dir)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.ports.amqp}/"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.management}/"

    def _write_config(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "enabled_plugins").write_text("[rabbitmq_management,rabbitmq_prometheus].\n")
        (self.home / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.ports.amqp}\n"
            f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {self.ports.management}\n"
            f"prometheus.tcp.ip = 127.0.0.1\nprometheus.tcp.port = {self.ports.prometheus}\n"
        )

    def env(self) -> dict[str, str]:
        home = str(self.home)
        return {
            **os.environ,
            "HOME": home,  # the Erlang cookie lives here, not in the user's home
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_CONFIG_FILE": f"{home}/rabbitmq.conf",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{home}/enabled_plugins",
            "RABBITMQ_MNESIA_BASE": f"{home}/mnesia",
            "RABBITMQ_LOG_BASE": f"{home}/log",
            "RABBITMQ_PLUGINS_EXPAND_DIR": f"{home}/plugins-expand",
            "RABBITMQ_DIST_PORT": str(self.ports.distribution),
            "ERL_EPMD_PORT": str(self.ports.epmd),
        }

    def start(self, timeout: float = 90.0) -> None:
        ensure_rabbitmq_installed()
        for name, port in (("AMQP", self.ports.amqp), ("management", self.ports.management)):
            if port_open(port):
                raise InfraError(
                    f"port {port} ({name}) is already in use: stop what listens there, "
                    "or set AMQP_URL to use that broker"
                )
        self._write_config()
        env = self.env()
        # Our own epmd in the foreground, so it is ours to stop; Erlang would
        # otherwise daemonize one that outlives the broker.
        epmd = epmd_binary()
        if not port_open(self.ports.epmd) and epmd is not None:
            self.epmd.start(
                [str(epmd), "-port", str(self.ports.epmd)],
                env=env,
                log_path=self.home / "epmd.log",
            )
            wait_for(lambda: port_open(self.ports.epmd), timeout=10, what="epmd")
        log_path = self.home / "server.log"
        self.server.start([str(RABBITMQ_SERVER)], env=env, log_path=log_path, cwd=self.home)
        wait_for(
            lambda: port_open(self.ports.amqp),
            timeout=timeout,
            what="RabbitMQ",
            process=self.server,
            log=log_path,
        )

    def stop(self) -> None:
        self.server.stop(timeout=60)
        self.epmd.stop()

    def kill(self) -> None:
        """Crash the broker (SIGKILL), for failure tests."""
        rec = self.server.recorded()
        if rec:
            _signal_group(rec[0], signal.SIGKILL)
            wait_for(lambda: not port_open(self.ports.amqp), timeout=10, what="RabbitMQ to die")
        self.server.pid_file.unlink(missing_ok=True)


# ---------------------------------------------------------------- MongoDB


def secantus_binary() -> str:
    candidate = Path(sys.executable).parent / "secantusd-py"
    found = str(candidate) if candidate.exists() else shutil.which("secantusd-py")
    if not found:
        raise InfraError(
            "No MongoDB available. Either set MONGO_URI to a MongoDB 7+ server, start a Docker "
            "engine, or install the dev dependencies (`make install`) for SecantusDB."
        )
    return found


class LocalMongo:
    """SecantusDB as its own process, storing under `home`."""

    def __init__(self, home: Path, port: int, run_dir: Path):
        self.home = home
        self.port = port
        self.process = ManagedProcess("mongodb", run_dir)

    @property
    def uri(self) -> str:
        # SecantusDB's retryable-write registry slows writes down as it grows.
        return f"mongodb://127.0.0.1:{self.port}/?retryWrites=false&directConnection=true"

    def start(self, timeout: float = 60.0) -> None:
        if port_open(self.port):
            raise InfraError(
                f"port {self.port} (MongoDB) is already in use: stop what listens there, "
                "or set MONGO_URI to use that server"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        log_path = self.home / "server.log"
        argv = [
            secantus_binary(),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--storage-path",
            str(self.home / "data"),
            "--log-level",
            "WARNING",
        ]
        self.process.start(argv, env=dict(os.environ), log_path=log_path, cwd=self.home)
        wait_for(lambda: port_open(self.port), timeout=timeout, what="SecantusDB", process=self.process, log=log_path)

    def stop(self) -> None:
        # Stopping waits for the process to exit, so its data directory is safe to remove after.
        self.process.stop(timeout=60)
