"""Helpers for the scale-out tests: a private Redis, a real nginx in front of several
``parley serve`` nodes, a link to PostgreSQL that can be severed, and waiting on
conditions with timeouts.

Everything runs as child processes on free loopback ports and is killed at the end; the
machine's shared Redis and PostgreSQL are never stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from parley.client import ParleyClient
from parley.wire.codes import CloseCode
from tests.conftest import need_service
from tests.support.gateway_helpers import EventLog, TcpProxy, metric, new_user, open_log, server_env
from tests.support.paths import REPO
from tests.support.server_process import ServerProcess

NGINX_CONF = REPO / "deploy" / "nginx" / "parley.conf"
NGINX = os.environ.get("PARLEY_TEST_NGINX", "/usr/sbin/nginx")
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
START_TIMEOUT = 15.0

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def need_binary(name: str, path: str, how: str) -> None:
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        need_service(name, how, FileNotFoundError(path))


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    *,
    timeout: float,
    what: str,
    every: float = 0.05,
) -> T:
    """Call ``probe`` until ``accept`` likes its result; fail with ``what`` after
    ``timeout`` seconds, naming the last result seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await probe()
            if accept(last):
                return last
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")
        await asyncio.sleep(every)


class RedisDeployment(Protocol):
    """What the scale-out tests need of Redis: one server, a Sentinel group or a cluster
    (``tests/support/redis_topologies.py``)."""

    @property
    def url(self) -> str: ...

    def start(self) -> Any: ...

    def kill(self) -> None: ...


class RedisServer:
    """A redis-server of the test's own, without persistence: restarting it loses
    everything, the worst case for the nodes."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        need_binary("redis-server", REDIS_SERVER, "Install redis-server.")
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on {self.port}")
            time.sleep(0.02)
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class Nginx:
    """nginx from Debian running ``deploy/nginx/parley.conf`` — the shipped file, with only
    the upstream addresses, the listen ports and the certificate paths replaced — as a child
    in the foreground. It serves TLS on ``tls_port`` with a self-signed certificate for
    127.0.0.1 (``ca_file`` verifies it), redirects plain HTTP on ``redirect_port``, and also
    listens in plain HTTP on ``port`` inside the TLS server block, so tests that are not
    about TLS reach the same locations without certificates."""

    def __init__(self, directory: Path, node_ports: list[int]) -> None:
        self.directory = directory
        self.port = free_port()
        self.tls_port = free_port()
        self.redirect_port = free_port()
        self.node_ports = node_ports
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}"

    @property
    def ca_file(self) -> Path:
        return self.directory / "tls" / "cert.pem"

    def config(self) -> str:
        shipped = NGINX_CONF.read_text()
        servers = "".join(
            f"    server 127.0.0.1:{port} max_fails=2 fail_timeout=5s;\n"
            for port in self.node_ports
        )
        shipped, count = re.subn(r"(?m)^\s*server parley\d+:8000[^\n]*\n", "", shipped)
        assert count == 2, "deploy/nginx/parley.conf changed shape: update the test"
        head = "upstream parley_nodes {\n"
        shipped = shipped.replace(head, head + servers)
        tls = self.directory / "tls"
        replacements = {
            "    listen [::]:80;\n": "",
            "    listen [::]:443 ssl http2;\n": "",
            "listen 80;": f"listen 127.0.0.1:{self.redirect_port};",
            "listen 443 ssl http2;": (
                f"listen 127.0.0.1:{self.tls_port} ssl http2;\n"
                f"    listen 127.0.0.1:{self.port};"
            ),
            "/etc/parley/tls/fullchain.pem": str(tls / "cert.pem"),
            "/etc/parley/tls/privkey.pem": str(tls / "key.pem"),
        }
        for shipped_text, test_text in replacements.items():
            assert shipped_text in shipped, f"deploy/nginx/parley.conf lost {shipped_text!r}"
            shipped = shipped.replace(shipped_text, test_text)
        d = self.directory
        # Root drops to "nobody" for workers, who could not write the test's directory.
        user = "user root;\n" if os.geteuid() == 0 else ""
        return (
            f"{user}worker_processes 1;\n"
            f"error_log {d}/error.log warn;\npid {d}/nginx.pid;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            "  access_log off;\n"
            f"  client_body_temp_path {d}/client_body;\n  proxy_temp_path {d}/proxy;\n"
            f"  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n"
            f"  scgi_temp_path {d}/scgi;\n"
            + shipped
            + "\n}\n"
        )

    def start(self) -> Nginx:
        need_binary("nginx", NGINX, "Install it: apt-get install -y nginx (.ci/run does).")
        self.directory.mkdir(parents=True, exist_ok=True)
        write_self_signed_certificate(self.directory / "tls", "127.0.0.1")
        conf = self.directory / "nginx.conf"
        conf.write_text(self.config())
        log = (self.directory / "nginx.out").open("ab")
        self.process = subprocess.Popen(
            [NGINX, "-c", str(conf), "-p", str(self.directory), "-g", "daemon off;"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start:\n{self.log()}")
            time.sleep(0.02)
        return self

    def log(self) -> str:
        parts = [self.directory / "error.log", self.directory / "nginx.out"]
        return "\n".join(p.read_text(errors="replace") for p in parts if p.exists())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def write_self_signed_certificate(directory: Path, address: str) -> None:
    """A P-256 certificate for ``address`` (and localhost), valid for a day, as
    ``cert.pem`` and ``key.pem`` in ``directory``: the certificate is its own CA."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "parley-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(address)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file = directory / "key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)


class DatabaseLink(TcpProxy):
    """A TCP proxy between the nodes and PostgreSQL. :meth:`sever` drops every live
    connection and refuses new ones (as if the database went down); :meth:`restore`
    listens again on the same port. The machine's PostgreSQL itself never stops."""

    async def sever(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self.cut()

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)


def through(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the loopback ``port``."""
    return re.sub(r"@[^/@]+/", f"@127.0.0.1:{port}/", url, count=1)


# Fast presence so that offline-after-TTL fits in a test: entries live 2 s, rewritten
# every 0.67 s; expired ones are swept every 0.1 s; reconnects within 1 s change nothing.
FAST_PRESENCE: dict[str, object] = {
    "presence_ttl_seconds": 2.0,
    "presence_sweep_interval_seconds": 0.1,
    "presence_offline_grace_seconds": 1.0,
}


@dataclass
class Cluster:
    """Nodes on one PostgreSQL and one Redis, behind nginx."""

    tmp_path: Path
    database_url: str
    redis: RedisDeployment
    settings: dict[str, object]
    nodes: list[ServerProcess] = field(default_factory=list)
    nginx: Nginx | None = None
    prefix: str = field(default_factory=lambda: f"scaleout-{secrets.token_hex(4)}")

    @property
    def base_url(self) -> str:
        assert self.nginx is not None
        return self.nginx.base_url

    def start_node(self, index: int, port: int | None = None) -> ServerProcess:
        directory = self.tmp_path / f"node{index}"
        directory.mkdir(parents=True, exist_ok=True)
        env = server_env(
            directory,
            self.database_url,
            redis_url=self.redis.url,
            redis_key_prefix=self.prefix,
            trust_proxy_headers="true",
            **{**FAST_PRESENCE, **self.settings},
        )
        node = ServerProcess(port or free_port(), env, directory).start()
        if index < len(self.nodes):
            self.nodes[index] = node
        else:
            self.nodes.append(node)
        return node

    async def metric(self, index: int, name: str) -> float:
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(self.nodes[index].base_url + "/metrics")).text
        try:
            return metric(text, name)
        except KeyError:
            return 0.0

    async def sessions(self) -> list[int]:
        return [
            int(await self.metric(index, "parley_gateway_sessions"))
            for index in range(len(self.nodes))
        ]

    async def ready(self, index: int) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=5) as http:
            response = await http.get(self.nodes[index].base_url + "/readyz")
        body: dict[str, Any] = response.json()
        body["http_status"] = response.status_code
        return body

    def logs(self) -> str:
        parts = [f"--- node {i} ---\n{node.log()[-6000:]}" for i, node in enumerate(self.nodes)]
        if self.nginx is not None:
            parts.append(f"--- nginx ---\n{self.nginx.log()[-3000:]}")
        return "\n".join(parts)


@contextlib.asynccontextmanager
async def running_cluster(
    tmp_path: Path,
    database_url: str,
    *,
    nodes: int = 2,
    redis_deployment: RedisDeployment | None = None,
    **settings: object,
) -> AsyncIterator[Cluster]:
    redis = redis_deployment or RedisServer(tmp_path / "redis")
    cluster = Cluster(tmp_path, database_url, redis, settings)
    try:
        await asyncio.to_thread(redis.start)
        # Started in turn: each migrates (a no-op) and creates nothing shared.
        for index in range(nodes):
            await asyncio.to_thread(cluster.start_node, index)
        cluster.nginx = Nginx(tmp_path / "nginx", [node.port for node in cluster.nodes])
        await asyncio.to_thread(cluster.nginx.start)
        yield cluster
    except BaseException:
        print(cluster.logs())  # shown by pytest for a failing test
        raise
    finally:
        if cluster.nginx is not None:
            cluster.nginx.stop()
        for node in cluster.nodes:
            node.kill()
        redis.kill()


@dataclass
class Located:
    log: EventLog
    node: int


async def open_located(cluster: Cluster, client: ParleyClient, **options: Any) -> Located:
    """Open a realtime session through nginx and find out which node took it (the one
    whose session count went up; sessions are opened one at a time)."""
    before = await cluster.sessions()
    log = await open_log(client, **options)
    after = await eventually(
        cluster.sessions,
        lambda counts: sum(counts) > sum(before),
        timeout=10,
        what="the new session is counted",
    )
    node = next(i for i, (a, b) in enumerate(zip(before, after, strict=True)) if b > a)
    return Located(log, node)


async def open_on(cluster: Cluster, client: ParleyClient, node: int, **options: Any) -> EventLog:
    """A session that landed on ``node``: round-robin sends every other connection there,
    so reconnecting a few times is enough (the attempts are bounded)."""
    for _ in range(8):
        before = await cluster.sessions()
        located = await open_located(cluster, client, **options)
        if located.node == node:
            return located.log
        await located.log.close()
        await eventually(
            cluster.sessions,
            lambda counts, before=before: counts == before,
            timeout=5,
            what="closed",
        )
    raise AssertionError(f"no session landed on node {node} through nginx")


class SteadySenders:
    """Each session sends to one conversation at a steady rate, under its own
    ``client_msg_id`` sequence, until stopped. What was acknowledged, and what failed
    with which code, is kept per ``client_msg_id``."""

    def __init__(self, logs: list[EventLog], conversation_id: str, *, interval: float) -> None:
        self.logs = logs
        self.conversation_id = conversation_id
        self.interval = interval
        self.acked: dict[str, str] = {}  # client_msg_id → message id
        self.failed: dict[str, str] = {}  # client_msg_id → error code (or exception name)
        self.latencies: list[float] = []
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> SteadySenders:
        self._tasks = [
            asyncio.create_task(self._send_from(index, log)) for index, log in enumerate(self.logs)
        ]
        return self

    async def _send_from(self, index: int, log: EventLog) -> None:
        number = 0
        while not self._stopping.is_set():
            began = time.monotonic()
            client_msg_id = f"s{index}-{number}"
            number += 1
            try:
                ack = await log.session.send_message(
                    self.conversation_id, f"steady {client_msg_id}", client_msg_id=client_msg_id,
                    timeout=20,
                )
                self.acked[client_msg_id] = ack["message"]["id"]
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                self.failed[client_msg_id] = str(getattr(exc, "code", None) or type(exc).__name__)
            self.latencies.append(time.monotonic() - began)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(), max(0.0, self.interval - (time.monotonic() - began))
                )

    async def stop(self) -> None:
        """Stop sending; sends in progress finish (their retries included)."""
        self._stopping.set()
        await asyncio.gather(*self._tasks)

    def count(self) -> int:
        return len(self.acked) + len(self.failed)


def created_ids(log: EventLog, conversation_id: str) -> list[str]:
    """Ids of the messages a session was given, every time it was given one."""
    return [
        e.data["message"]["id"]
        for e in log.of("message.created")
        if e.conversation_id == conversation_id
    ]


# --- a group sending steadily while Redis fails (test_scaleout_redis, _sentinel, _cluster)

READY = (200, "ok", "ok")  # a node's readiness: HTTP status, overall status, the bus's


def bus_state(ready: dict[str, Any]) -> tuple[int, str, str]:
    return ready["http_status"], ready["status"], ready["checks"]["bus"]["status"]


async def all_nodes(cluster: Cluster, wanted: tuple[int, str, str]) -> None:
    for index in range(len(cluster.nodes)):
        await eventually(
            lambda index=index: cluster.ready(index),
            lambda ready: bus_state(ready) == wanted,
            timeout=10,
            what=f"node {index} readiness {wanted}",
        )


async def acknowledged(senders: SteadySenders, count: int) -> None:
    target = len(senders.acked) + count
    await eventually(
        lambda: asyncio.sleep(0, len(senders.acked)),
        lambda n: n >= target,
        timeout=15,
        what=f"{count} more sends acknowledged",
    )


@dataclass
class GroupUnderLoad:
    """The members of one group, a realtime session each (on both nodes), all sending."""

    people: list[ParleyClient]
    logs: list[EventLog]
    conversation_id: str
    senders: SteadySenders


@contextlib.asynccontextmanager
async def group_under_load(
    cluster: Cluster, *, members: int = 4, interval: float = 0.05
) -> AsyncIterator[GroupUnderLoad]:
    """``members`` users in one group, each with a session through nginx (both nodes take
    some), the nodes ready, and every session sending every ``interval`` seconds — 40
    sends acknowledged already. Sessions and clients are closed at the end."""
    people = [await new_user(cluster.base_url, f"member{number}") for number in range(members)]
    logs: list[EventLog] = []
    try:
        group = await people[0].create_group("Load", [p.user_id for p in people[1:]])
        nodes = []
        for person in people:
            located = await open_located(cluster, person, auto_delivered=False)
            logs.append(located.log)
            nodes.append(located.node)
        assert set(nodes) == {0, 1}, nodes
        await all_nodes(cluster, READY)

        senders = SteadySenders(logs, group["id"], interval=interval).start()
        await acknowledged(senders, 40)
        yield GroupUnderLoad(people, logs, group["id"], senders)
    finally:
        for log in logs:
            await log.close()
        for person in people:
            await person.aclose()


async def each_got_every_acknowledged_message_once(load: GroupUnderLoad, *, told_to_resume: bool) -> None:
    """Every acknowledged message is in every session exactly once, whether it came live or
    from the changes feed; ``told_to_resume``: each session was also closed 4011 (resync)."""
    acked = set(load.senders.acked.values())
    for log in load.logs:
        if told_to_resume:
            assert CloseCode.RESYNC in log.session.close_codes, log.session.close_codes
        await log.wait_for(
            lambda _, log=log: acked <= set(created_ids(log, load.conversation_id)), timeout=20
        )
        repeated = {m: n for m, n in Counter(created_ids(log, load.conversation_id)).items() if n > 1}
        assert repeated == {}, repeated


class LoggedRedisDeployment(RedisDeployment, Protocol):
    def logs(self) -> str: ...


Deployment = TypeVar("Deployment", bound=LoggedRedisDeployment)


@contextlib.contextmanager
def redis_topology(deployment: Deployment) -> Iterator[Deployment]:
    """A Sentinel group or a cluster (``tests/support/redis_topologies.py``) for one test: its logs
    printed when the test fails (pytest shows them), every process killed at the end."""
    try:
        yield deployment
    except BaseException:
        print(deployment.logs())
        raise
    finally:
        deployment.kill()
