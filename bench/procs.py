"""Processes for the benchmarks: start a server pinned to a core, read its CPU and memory.

CPU and RSS come from ``/proc/<pid>/stat`` (utime + stime, in clock ticks) and
``/proc/<pid>/status`` (VmRSS), read by the harness while the load runs. Every server is
started on 127.0.0.1 only, with a deadline, and killed by the harness when it is done.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
STARTUP_TIMEOUT_SECONDS = 60.0
BENCH_DIR = Path(__file__).resolve().parent

# Parley as the benchmarks run it. The per-user and per-connection rate limits would
# otherwise be what is measured; Argon2 at its cheapest only speeds up the setup (every
# login hashes once; nothing in a measured phase hashes).
PARLEY_BENCH_ENV = {
    "PARLEY_MESSAGE_RATE_PER_SECOND": "1000000",
    "PARLEY_MESSAGE_BURST": "1000000",
    "PARLEY_CONVERSATION_MESSAGE_RATE_PER_SECOND": "1000000",
    "PARLEY_CONVERSATION_MESSAGE_BURST": "1000000",
    "PARLEY_API_RATE_PER_SECOND": "1000000",
    "PARLEY_API_BURST": "1000000",
    "PARLEY_REGISTRATIONS_PER_ADDRESS": "1000000",
    "PARLEY_LOGIN_ADDRESS_FAILURES_ALLOWED": "1000000",
    "PARLEY_GATEWAY_FRAME_RATE_PER_SECOND": "1000000",
    "PARLEY_GATEWAY_FRAME_BURST": "1000000",
    "PARLEY_ARGON2_TIME_COST": "1",
    "PARLEY_ARGON2_MEMORY_KIB": "1024",
    "PARLEY_ARGON2_PARALLELISM": "1",
    # A run may outlast the default 15 minutes; an expired token would close sockets (4002).
    "PARLEY_ACCESS_TOKEN_TTL_SECONDS": "86400",
    "PARLEY_SECRET_KEY": "bench-secret-" + "x" * 40,
}


def free_port() -> int:
    """A free loopback port: any, or one in ``BENCH_PORTS`` (``first-last``) on a machine
    where each user of it keeps to a range of its own."""
    span = os.environ.get("BENCH_PORTS", "")
    candidates = [0]
    if span:
        first, _, last = span.partition("-")
        candidates = list(range(int(first), int(last or first) + 1))
        random.shuffle(candidates)  # two servers made before either binds get different ports
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError(f"no free port in BENCH_PORTS={span}")


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # monotonic seconds
    cpu_seconds: float  # user + system since the process started
    rss_bytes: int


@dataclass(frozen=True)
class MachineSample:
    """CPU seconds the whole machine, and the database and Redis processes, have used."""

    at: float  # monotonic seconds
    busy_seconds: float  # every core's non-idle time (user, nice, system, irq, softirq, steal)
    by_name: dict[str, float]  # process name (as /proc/<pid>/stat has it) → CPU seconds

    def cores_since(self, earlier: MachineSample) -> dict[str, float]:
        """Cores busy between ``earlier`` and this sample: the machine and each name."""
        elapsed = max(self.at - earlier.at, 1e-9)
        cores = {"machine": (self.busy_seconds - earlier.busy_seconds) / elapsed}
        for name, seconds in self.by_name.items():
            # A process that exited in between takes its CPU with it: never below zero.
            cores[name] = max(0.0, seconds - earlier.by_name.get(name, 0.0)) / elapsed
        return cores


def machine_sample(names: tuple[str, ...] = ("postgres", "redis-server")) -> MachineSample:
    """The machine's busy CPU from ``/proc/stat`` and the CPU of every process named in
    ``names`` (PostgreSQL's backends and Redis, which a server's own CPU leaves out)."""
    with open("/proc/stat", "rb") as handle:
        ticks = [int(v) for v in handle.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal: idle and iowait are not busy.
    busy = sum(ticks[:3]) + sum(ticks[5:8])
    by_name = dict.fromkeys(names, 0.0)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_bytes()
        except OSError:
            continue
        name = raw[raw.find(b"(") + 1 : raw.rfind(b")")].decode(errors="replace")
        if name in by_name:
            by_name[name] += stat_cpu_seconds(raw)
    return MachineSample(time.monotonic(), busy / CLOCK_TICKS, by_name)


def stat_cpu_seconds(stat: bytes) -> float:
    """utime + stime (fields 14 and 15) of a ``/proc/.../stat`` line, in seconds."""
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    fields = stat.rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def sample(pid: int) -> Sample:
    """CPU seconds and resident memory of ``pid`` right now."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        cpu = stat_cpu_seconds(handle.read())
    rss = 0
    with open(f"/proc/{pid}/status", "rb") as handle:
        for line in handle:
            if line.startswith(b"VmRSS:"):
                rss = int(line.split()[1]) * 1024
                break
    return Sample(time.monotonic(), cpu, rss)


def thread_cpu_seconds(pid: int, tid: int | None = None) -> float:
    """CPU seconds of one thread of ``pid`` (its main thread by default: a server's event
    loop), user + system."""
    with open(f"/proc/{pid}/task/{tid or pid}/stat", "rb") as handle:
        return stat_cpu_seconds(handle.read())


def cpu_share(before: Sample, after: Sample) -> float:
    """Fraction of one core used between two samples (1.0 = a whole core)."""
    elapsed = after.at - before.at
    return (after.cpu_seconds - before.cpu_seconds) / elapsed if elapsed > 0 else 0.0


# --- pinning


@dataclass(frozen=True, slots=True)
class Pinning:
    server: list[int] | None
    load: list[int] | None
    note: str


def plan_pinning() -> Pinning:
    """The server on the first core, the load generator on the others — when ``taskset``
    exists and there are at least two cores; otherwise nothing is pinned (and it says so)."""
    cores = sorted(os.sched_getaffinity(0))
    if shutil.which("taskset") is None:
        return Pinning(None, None, "not pinned: taskset not found")
    if len(cores) < 2:
        return Pinning(None, None, f"not pinned: only core {cores} available")
    server, load = cores[:1], cores[1:]
    return Pinning(server, load, f"server on core {server[0]}, load on cores {','.join(map(str, load))} (taskset)")


def pin_self(cores: list[int] | None) -> None:
    if cores:
        os.sched_setaffinity(0, cores)


# --- servers


class Server:
    """A server child process on a loopback port: started, sampled, stopped."""

    startup_timeout = STARTUP_TIMEOUT_SECONDS

    def __init__(
        self,
        name: str,
        argv: list[str],
        port: int,
        env: dict[str, str],
        workdir: Path,
        cores: list[int] | None,
    ) -> None:
        self.name = name
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/ws"
        self.workdir = workdir
        self.log_path = workdir / f"{name}-{port}.log"
        prefix = ["taskset", "-c", ",".join(map(str, cores))] if cores else []
        self.argv = prefix + argv
        self.env = os.environ | env
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid  # taskset execs the command: same pid

    def start(self) -> Server:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, env=self.env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()[-3000:]}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"{self.name} did not answer in time:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def sample(self) -> Sample:
        return sample(self.pid)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (a graceful shutdown), then SIGKILL if it takes longer than ``timeout``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


def parley_server(workdir: Path, cores: list[int] | None, port: int | None = None, **extra: str) -> Server:
    port = port or free_port()
    env = PARLEY_BENCH_ENV | {
        "PARLEY_HOST": "127.0.0.1",
        "PARLEY_PORT": str(port),
        "PARLEY_DATA_DIR": str(workdir / "data"),
    } | extra
    argv = [sys.executable, "-m", "parley", "serve"]
    profile = os.environ.get("BENCH_CPROFILE")
    if profile:
        argv = [sys.executable, "-c", _PROFILED_SERVE, f"{profile}-{port}.prof"]
    return Server("parley", argv, port, env, workdir, cores)


# ``BENCH_CPROFILE=<prefix>``: cProfile of the server's main thread (the event loop),
# written to <prefix>-<port>.prof when it stops, for machines without py-spy. Timed in the
# thread's own CPU time: on a loaded machine wall time would charge whatever function was
# running when the scheduler took the core away. uvicorn raises SIGTERM again after its
# graceful shutdown; exiting on it instead lets cProfile write its file. cProfile slows
# Python calls down several times: read it for where the time goes, never for rates.
_PROFILED_SERVE = """
import cProfile, runpy, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
output, sys.argv = sys.argv[1], ["parley", "serve"]
profile = cProfile.Profile(time.thread_time)
try:
    profile.runctx("runpy.run_module('parley', run_name='__main__')", globals(), {})
except SystemExit:
    pass
finally:
    profile.dump_stats(output)
"""


def floor_server(workdir: Path, cores: list[int] | None, port: int | None = None) -> Server:
    port = port or free_port()
    argv = [sys.executable, str(BENCH_DIR / "floor_server.py"), "--port", str(port)]
    return Server("floor", argv, port, {}, workdir, cores)


def raise_open_files_limit(wanted: int = 65536) -> int:
    """Raise this process's soft limit on open files as far as the hard limit allows.
    (The server is a child: it inherits the raised limit. Outside the harness, start
    ``parley serve`` with ``ulimit -n`` high enough for its connections.)"""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft
