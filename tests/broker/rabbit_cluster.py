"""A real three-node RabbitMQ cluster of the test's own, on this machine.

Each node is Debian's `rabbitmq-server` with its own name, ports, data and
logs and one shared Erlang cookie; the second and third join the first with
`rabbitmqctl join_cluster`. Two layouts:

- `on_loopback`: every node on 127.0.0.1 with ports of its own and one epmd;
- `in_namespaces`: every node in a network namespace of its own (`ip netns`),
  reached over a veth pair from a bridge in the test's namespace, on
  private addresses (10.213.0.0/24) that never leave the machine, so one node
  can be cut off by taking its link down. Erlang finds the nodes' names
  through an inetrc file (ERL_INETRC), not /etc/hosts.

Partition handling is `pause_minority`, as the RabbitMQ Cluster Operator sets
it: a node cut off from the other two stops serving rather than going on alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from hookyard_cli.devstack import (
    RABBITMQ_SERVER,
    InfraError,
    ManagedProcess,
    ensure_rabbitmq_installed,
    epmd_binary,
    free_ports,
    port_open,
    wait_for,
)

RABBITMQCTL = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")
COOKIE = "HOOKYARDCLUSTERTESTCOOKIE"
#: The namespaces' subnet, and the bridge's address on it (the test's side of every link).
SUBNET = "10.213.0"
BRIDGE_ADDRESS = f"{SUBNET}.1"


def netns_available() -> bool:
    """Whether this process may make network namespaces (root with `ip netns`)."""
    if shutil.which("ip") is None:
        return False
    name = "hyk-probe"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode == 0
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return made


@dataclass
class Node:
    name: str  # the Erlang node name
    host: str  # the address clients connect to
    amqp_port: int
    dist_port: int
    epmd_port: int
    home: Path
    netns: str | None = None
    inetrc: Path | None = None

    def __post_init__(self) -> None:
        self.server = ManagedProcess(self.name.split("@")[0], self.home / "run")
        self.epmd = ManagedProcess("epmd", self.home / "run")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{self.host}:{self.amqp_port}/"

    def env(self) -> dict[str, str]:
        home = str(self.home)
        found = {
            **os.environ,
            "HOME": home,  # its Erlang cookie
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_CONFIG_FILE": f"{home}/rabbitmq.conf",
            "RABBITMQ_ADVANCED_CONFIG_FILE": f"{home}/advanced.config",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{home}/enabled_plugins",
            "RABBITMQ_MNESIA_BASE": f"{home}/mnesia",
            "RABBITMQ_LOG_BASE": f"{home}/log",
            "RABBITMQ_PLUGINS_EXPAND_DIR": f"{home}/plugins-expand",
        }
        if self.inetrc is not None:
            found["ERL_INETRC"] = str(self.inetrc)
        return found

    def argv(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *command] if self.netns else list(command)

    def write_config(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(COOKIE)
        cookie.chmod(0o400)
        (self.home / "enabled_plugins").write_text("[].\n")
        (self.home / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {self.host}:{self.amqp_port}\n"
            "loopback_users = none\n"  # guest from the bridge's address too: a test broker
            "cluster_partition_handling = pause_minority\n"
        )
        # A lost peer noticed in about 4 s instead of Erlang's 60 s, to keep the test short.
        (self.home / "advanced.config").write_text("[{kernel, [{net_ticktime, 4}]}].\n")

    def start(self) -> None:
        self.write_config()
        epmd = epmd_binary()
        if epmd is not None and not self._epmd_answers():
            self.epmd.start(
                self.argv(str(epmd), "-port", str(self.epmd_port)), env=self.env(), log_path=self.home / "epmd.log"
            )
        self.server.start(
            self.argv(str(RABBITMQ_SERVER)), env=self.env(), log_path=self.home / "server.log", cwd=self.home
        )

    def _epmd_answers(self) -> bool:
        return self.netns is None and port_open(self.epmd_port)

    def wait_started(self, timeout: float = 60.0) -> None:
        wait_for(
            self.ctl_ok,
            timeout=timeout,
            what=f"RabbitMQ {self.name}",
            process=self.server,
            log=self.home / "server.log",
        )

    def ctl_ok(self) -> bool:
        return self.ctl("await_startup", "--timeout", "2", check=False).returncode == 0

    def ctl(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        done = subprocess.run(
            self.argv(str(RABBITMQCTL), "-n", self.name, *args),
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode:
            raise InfraError(f"rabbitmqctl {' '.join(args)} on {self.name}: {done.stdout}{done.stderr}")
        return done

    def kill(self) -> None:
        """SIGKILL the node (its whole process group)."""
        os.killpg(self.server.pid, signal.SIGKILL)

    def stop(self) -> None:
        self.server.stop(timeout=20)
        self.epmd.stop()


class Cluster:
    def __init__(self, nodes: list[Node]):
        self.nodes = nodes
        self.links: list[str] = []  # host-side veth names, for cut_off
        self.namespaces: list[str] = []
        self.bridge: str | None = None

    @property
    def amqp_url(self) -> str:
        """AMQP_URL listing every node, the first in full, the others as host:port."""
        first, *others = self.nodes
        return ",".join([first.url, *(f"{n.host}:{n.amqp_port}" for n in others)])

    @classmethod
    def on_loopback(cls, home: Path, tag: str) -> Cluster:
        ports = free_ports(7)
        epmd = ports[6]
        nodes = [
            Node(f"{tag}{i}@localhost", "127.0.0.1", ports[2 * i], ports[2 * i + 1], epmd, home / f"node{i}")
            for i in range(3)
        ]
        return cls(nodes)

    @classmethod
    def in_namespaces(cls, home: Path, tag: str) -> Cluster:
        home.mkdir(parents=True, exist_ok=True)
        inetrc = home / "inetrc"
        names = [f"{tag}{i}" for i in range(3)]
        hosts = [f"{SUBNET}.{11 + i}" for i in range(3)]
        inetrc.write_text(
            "".join(f'{{host, {{{h.replace(".", ",")}}}, ["{n}"]}}.\n' for n, h in zip(names, hosts, strict=True))
            + "{lookup, [file, native]}.\n"
        )
        nodes = [
            Node(f"rabbit@{n}", h, 5672, 25672, 4369, home / f"node{i}", netns=n, inetrc=inetrc)
            for i, (n, h) in enumerate(zip(names, hosts, strict=True))
        ]
        cluster = cls(nodes)
        cluster.bridge = f"{tag}br"
        return cluster

    def make_network(self) -> None:
        """The bridge, and one namespace and veth pair per node (namespaced layout only)."""
        assert self.bridge is not None
        ip = self._ip
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{BRIDGE_ADDRESS}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for node in self.nodes:
            assert node.netns is not None
            ns, outside = node.netns, f"{node.netns}h"
            ip("netns", "add", ns)
            self.namespaces.append(ns)
            ip("link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self.links.append(outside)
            ip("link", "set", outside, "master", self.bridge)
            ip("link", "set", outside, "up")
            ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
            ip("netns", "exec", ns, "ip", "addr", "add", f"{node.host}/24", "dev", "eth0")
            ip("netns", "exec", ns, "ip", "link", "set", "eth0", "up")

    @staticmethod
    def _ip(*args: str) -> None:
        done = subprocess.run(["ip", *args], capture_output=True, text=True)
        if done.returncode:
            raise InfraError(f"ip {' '.join(args)}: {done.stderr}")

    def start(self) -> None:
        ensure_rabbitmq_installed()
        if self.bridge is not None:
            self.make_network()
        for node in self.nodes:
            node.start()
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda n: n.wait_started(), self.nodes))
        first = self.nodes[0]
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.name)
            node.ctl("start_app")
        running = first.ctl("eval", "length(rabbit_nodes:all_running()).").stdout.strip()
        if running != "3":
            raise InfraError(f"the cluster has {running} running nodes, not 3")

    def node_named(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def leader_of(self, queue: str, vhost: str = "/", ask: Node | None = None) -> Node:
        """The node leading quorum queue `queue`, as the cluster reports it."""
        ask = ask or self.nodes[0]
        listing = ask.ctl("list_queues", "-p", vhost, "name", "leader", "--no-table-headers", "--quiet").stdout
        for line in listing.splitlines():
            parts = line.split()
            if parts and parts[0] == queue:
                return self.node_named(parts[1])
        raise InfraError(f"{queue} not found in {listing!r}")

    def members_of(self, queue: str, vhost: str = "/") -> list[str]:
        listing = (
            self.nodes[0].ctl("list_queues", "-p", vhost, "name", "members", "--no-table-headers", "--quiet").stdout
        )
        for line in listing.splitlines():
            if line.split() and line.split()[0] == queue:
                return [word.strip("[],\"'") for word in line.split()[1:] if "@" in word]
        raise InfraError(f"{queue} not found")

    def cut_off(self, node: Node) -> None:
        """Take the node's only link down: no peer and no client reaches it any more."""
        self._ip("link", "set", f"{node.netns}h", "down")

    def stop(self) -> None:
        """Stop every node and remove the network, whatever state the test left them in."""
        for node in self.nodes:
            with contextlib.suppress(Exception):  # clean up the rest regardless
                node.stop()
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for link in self.links:
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        if self.bridge is not None:
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


def wait_until(check, timeout: float, what: str) -> float:
    """Seconds until `check()` held; raises past `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout} s")
