"""A PostgreSQL primary and a streaming replica of the test's own, on free loopback ports.

Why not a replica of the machine's shared server (127.0.0.1:5432)? Its ``pg_hba.conf``
admits no replication connections (``all`` does not cover ``replication``), and the tests
never reconfigure or restart it. So the test runs ``initdb`` for a private primary (trust on
loopback, replication allowed), ``pg_basebackup -R`` from it over the streaming-replication
protocol, and starts the copy as a hot standby with ``pg_ctl`` — the same steps as for any
production replica. PostgreSQL refuses to run as root: as root, every command runs as the
``postgres`` account (``runuser``), in a directory under /tmp it owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from parley.store.replicas import record_end
from tests.conftest import need_service
from tests.support.free_ports import free_port

START_TIMEOUT = 30.0
DATABASE = "parley"


def postgres_bin() -> Path | None:
    configured = os.environ.get("PARLEY_TEST_PG_BIN")
    if configured:
        return Path(configured)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class ReplicatedPostgres:
    def __init__(self, *, durable: bool = False, primary_settings: str = "") -> None:
        """``durable``: PostgreSQL's defaults (fsync, synchronous commit), for measuring;
        otherwise off, for speed: durability is not what the tests check.
        ``primary_settings``: more ``postgresql.conf`` lines for the primary."""
        binaries = postgres_bin()
        if binaries is None or not (binaries / "pg_basebackup").exists():
            need_service("PostgreSQL server binaries", "Install postgresql (initdb, pg_ctl).")
        assert binaries is not None
        self.bin = binaries
        self.as_postgres = os.geteuid() == 0
        self.directory = Path(tempfile.mkdtemp(prefix="parley-pg-"))
        if self.as_postgres:
            account = pwd.getpwnam("postgres")
            os.chown(self.directory, account.pw_uid, account.pw_gid)
        self.primary_port = free_port()
        self.replica_port = free_port()
        self.started: list[Path] = []
        self.durable = durable
        self.primary_settings = primary_settings

    def url(self, port: int, database: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/{database}"

    @property
    def primary_url(self) -> str:
        return self.url(self.primary_port)

    @property
    def replica_url(self) -> str:
        return self.url(self.replica_port)

    def _run(self, *args: str, timeout: float = START_TIMEOUT) -> str:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def sql(self, port: int, statement: str, database: str = DATABASE) -> str:
        """One statement through psql; its unaligned output."""
        return self._run(
            "psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", database,
            "-v", "ON_ERROR_STOP=1", "-Atc", statement,
        ).strip()

    def start(self) -> ReplicatedPostgres:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> ReplicatedPostgres:
        primary = self.directory / "primary"
        replica = self.directory / "replica"
        self._run("initdb", "-D", str(primary), "-U", "postgres", "--auth=trust", "-N")
        with (primary / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.primary_port}\n"
                f"unix_socket_directories = '{self.directory}'\n"
                "wal_level = replica\nmax_wal_senders = 4\n"
            )
            if not self.durable:
                conf.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
            conf.write(f"{self.primary_settings}\n")
        with (primary / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        self._pg_ctl(primary, "start")
        self.sql(self.primary_port, f"CREATE DATABASE {DATABASE}", database="postgres")
        self._run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres",
            # A fast checkpoint: the default spreads it over minutes.
            "-D", str(replica), "-R", "-X", "stream", "--no-sync", "--checkpoint=fast",
        )
        with (replica / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {self.replica_port}\nhot_standby = on\n")
        self._pg_ctl(replica, "start")
        return self

    def _pg_ctl(self, data: Path, action: str) -> None:
        if action == "start":
            self._run("pg_ctl", "-D", str(data), "-l", str(data / "server.log"), "-w", "start")
            self.started.append(data)
        else:
            self._run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
            self.started.remove(data)

    # --- lag, on demand

    def pause_replay(self) -> None:
        self.sql(self.replica_port, "SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self.sql(self.replica_port, "SELECT pg_wal_replay_resume()")

    def caught_up(self) -> bool:
        """Whether the replica has replayed everything the primary wrote so far — its insert
        position, which covers asynchronous commits not yet written out, less a page header
        (store/replicas.py)."""
        inserted, segment, block = self.sql(
            self.primary_port,
            "SELECT pg_current_wal_insert_lsn(), pg_size_bytes(current_setting('wal_segment_size')),"
            " current_setting('wal_block_size')",
        ).split("|")
        target = record_end(inserted, segment_bytes=int(segment), block_bytes=int(block))
        return self.sql(
            self.replica_port, f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
        ) == "t"

    def wait_replayed(self, lsn: str, timeout: float = START_TIMEOUT) -> None:
        """Until the replica has replayed up to ``lsn``."""
        deadline = time.monotonic() + timeout
        while self.sql(self.replica_port, f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn") != "t":
            if time.monotonic() > deadline:
                raise AssertionError(f"the replica did not replay up to {lsn}")
            time.sleep(0.05)

    def wait_caught_up(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not self.caught_up():
            if time.monotonic() > deadline:
                raise AssertionError("the replica did not catch up")
            time.sleep(0.05)

    def stop_replica(self) -> None:
        self._pg_ctl(self.directory / "replica", "stop")

    def stop(self) -> None:
        for data in list(reversed(self.started)):
            try:
                self._pg_ctl(data, "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.directory, ignore_errors=True)
