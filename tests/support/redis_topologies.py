"""Redis as production runs it, started by the tests on free loopback ports: a primary with
a replica watched by three sentinels, and a three-primary cluster. Child processes of the
test, killed at the end; the machine's shared Redis is never touched."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.support.free_ports import free_port
from tests.support.loopback import START_TIMEOUT, need_binary
from tests.support.scaleout_helpers import REDIS_SERVER

SERVICE = "parley-primary"
# Sentinels call a primary down after this much silence, and fail over at once (quorum 2
# of 3): small, so that a test's failover takes a few seconds, not the default 30.
DOWN_AFTER_MS = 1000


def command(port: int, *words: str, timeout: float = 2.0) -> bytes:
    """One command in RESP over a plain socket (no redis-py: the helper must not depend
    on the code under test); the raw reply."""
    request = f"*{len(words)}\r\n".encode() + b"".join(
        f"${len(w.encode())}\r\n{w}\r\n".encode() for w in words
    )
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(request)
        reply = b""
        conn.settimeout(timeout)
        while not reply.endswith(b"\r\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
        # Bulk and array replies may need more than one read; enough for the small ones here.
        time.sleep(0.01)
        conn.setblocking(False)
        try:
            while chunk := conn.recv(65536):
                reply += chunk
        except BlockingIOError:
            pass
        return reply


def answers(port: int) -> bool:
    try:
        return command(port, "PING", timeout=0.5).startswith(b"+PONG")
    except OSError:
        return False


class RedisProcess:
    def __init__(self, directory: Path, port: int, *args: str) -> None:
        self.directory = directory
        self.port = port
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisProcess:
        need_binary("redis-server", REDIS_SERVER, "Install redis-server.")
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [REDIS_SERVER, *self.args], stdout=log, stderr=subprocess.STDOUT, cwd=self.directory
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not answers(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on {self.port}: {self.log()}")
            time.sleep(0.02)
        return self

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def data_node(directory: Path, port: int, *extra: str) -> RedisProcess:
    return RedisProcess(
        directory,
        port,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(directory),
        *extra,
    )


class SentinelGroup:
    """A primary, one replica and three sentinels (quorum 2)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.primary = data_node(directory / "primary", free_port())
        self.replica = data_node(
            directory / "replica", free_port(), "--replicaof", "127.0.0.1", str(self.primary.port)
        )
        self.sentinels: list[RedisProcess] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}"

    def start(self) -> SentinelGroup:
        try:
            return self._start()
        except BaseException:
            self.kill()  # what did start must not outlive the test
            raise

    def _start(self) -> SentinelGroup:
        self.primary.start()
        self.replica.start()
        deadline = time.monotonic() + START_TIMEOUT
        while b"master_link_status:up" not in command(self.replica.port, "INFO", "replication"):
            if time.monotonic() > deadline:
                raise RuntimeError("the replica did not sync")
            time.sleep(0.05)
        for number in range(3):
            directory = self.directory / f"sentinel{number}"
            directory.mkdir(parents=True, exist_ok=True)
            port = free_port()
            config = directory / "sentinel.conf"  # sentinels rewrite their file: one each
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} 10000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self.sentinels.append(RedisProcess(directory, port, str(config), "--sentinel").start())
        # Every sentinel has found the replica and the other sentinels: a failover can run.
        while not all(self._sees_everyone(s.port) for s in self.sentinels):
            if time.monotonic() > deadline + START_TIMEOUT:
                raise RuntimeError("the sentinels did not discover each other")
            time.sleep(0.1)
        return self

    def _sees_everyone(self, port: int) -> bool:
        reply = command(port, "SENTINEL", "MASTER", SERVICE)
        fields = reply.split(b"\r\n")
        try:
            replicas = int(fields[fields.index(b"num-slaves") + 2])
            others = int(fields[fields.index(b"num-other-sentinels") + 2])
        except (ValueError, IndexError):
            return False
        return replicas >= 1 and others >= 2

    def primary_port(self) -> int:
        """The primary as the first sentinel sees it now."""
        reply = command(self.sentinels[0].port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(reply.split(b"\r\n")[-2])

    def kill_primary(self) -> RedisProcess:
        """Kill whichever node is the primary now; the one killed."""
        port = self.primary_port()
        victim = self.primary if self.primary.port == port else self.replica
        victim.kill()
        return victim

    def kill(self) -> None:
        for process in (*self.sentinels, self.primary, self.replica):
            process.kill()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.directory.name} ---\n{p.log()}"
            for p in (self.primary, self.replica, *self.sentinels)
        )


REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


class RedisClusterGroup:
    """Three primaries (``--cluster-enabled yes``) joined by ``redis-cli --cluster create``,
    each owning a third of the slots; with ``replicas=1`` each also gets a replica."""

    def __init__(self, directory: Path, *, primaries: int = 3, replicas: int = 0) -> None:
        self.directory = directory
        self.replicas = replicas
        self.nodes = [
            data_node(
                directory / f"node{number}",
                port := free_port(),
                "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-node-timeout", "1000",
                # Explicit: the default (port + 10000) fails for ports above 55535.
                "--cluster-port", str(free_port()),
            )
            for number in range(primaries * (1 + replicas))
        ]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> RedisClusterGroup:
        try:
            return self._start()
        except BaseException:
            self.kill()  # what did start must not outlive the test
            raise

    def _start(self) -> RedisClusterGroup:
        need_binary("redis-cli", REDIS_CLI, "Install redis-tools.")
        for node in self.nodes:
            node.start()
        created = subprocess.run(
            [
                REDIS_CLI, "--cluster", "create",
                *(f"127.0.0.1:{n.port}" for n in self.nodes),
                "--cluster-replicas", str(self.replicas), "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout}{created.stderr}")
        deadline = time.monotonic() + START_TIMEOUT
        while not all(
            b"cluster_state:ok" in command(n.port, "CLUSTER", "INFO") for n in self.nodes
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not become ok")
            time.sleep(0.05)
        return self

    def primaries(self) -> list[int]:
        alive = next(n for n in self.nodes if n.process is not None and n.process.poll() is None)
        return cluster_primary_ports(alive.port)

    def kill_primary(self) -> RedisProcess:
        """Kill the first primary (its replica, if any, is promoted by the cluster) once its
        replicas are in sync: one still in its first SYNC cannot be promoted."""
        port = self.primaries()[0]
        wait_replicas_in_sync(port)
        victim = next(n for n in self.nodes if n.port == port)
        victim.kill()
        return victim

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()

    def logs(self) -> str:
        return "\n".join(f"--- {n.directory.name} ---\n{n.log()}" for n in self.nodes)


def wait_replicas_in_sync(primary_port: int, timeout: float = 30.0) -> None:
    """Until every replica of the primary on ``primary_port`` reports its link up."""
    rows = [
        line.split(" ")
        for line in command(primary_port, "CLUSTER", "NODES").decode(errors="replace").splitlines()
        if len(line.split(" ")) > 3  # node lines, not the reply's "$length" header
    ]
    primary_id = next(row[0] for row in rows if "myself" in row[2])
    replicas = [
        int(row[1].split("@")[0].rsplit(":", 1)[1])
        for row in rows
        if "slave" in row[2] and row[3] == primary_id
    ]
    deadline = time.monotonic() + timeout
    for replica in replicas:
        while b"master_link_status:up" not in command(replica, "INFO", "replication"):
            if time.monotonic() >= deadline:
                raise AssertionError(f"the replica on {replica} did not sync within {timeout}s")
            time.sleep(0.1)


def cluster_primary_ports(port: int) -> list[int]:
    """Ports of the primaries, as the node on ``port`` sees them (CLUSTER NODES)."""
    text = command(port, "CLUSTER", "NODES").decode(errors="replace")
    ports = []
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) > 2 and "master" in fields[2] and "fail" not in fields[2]:
            ports.append(int(fields[1].split("@")[0].rsplit(":", 1)[1]))
    return sorted(ports)
