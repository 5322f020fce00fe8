"""A throwaway PostgreSQL cluster on 127.0.0.1 for tests and benchmarks.

``PostgresCluster`` runs ``initdb`` into a fresh temporary directory, starts
the server on a free loopback port (its Unix socket stays inside that
directory), creates databases on demand and, on ``stop()``, shuts the server
down and deletes the directory. Nothing is shared with a server started by
hand.

PostgreSQL refuses to run as root, so when the tests run as root the server
runs as the ``postgres`` user (or ``nobody``) through ``runuser``.

Binaries are looked up in ``$ARBITER_PG_BIN``, then ``PATH``, then
``/usr/lib/postgresql/<newest>/bin``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path

import psycopg

#: Settings for a fast disposable test cluster: no fsync, because a test
#: database never needs to survive a power cut. Benchmarks pass ``{}`` to keep
#: PostgreSQL's durable defaults (fsync=on, synchronous_commit=on).
FAST_TEST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are not installed or would not start."""


def find_pg_bin() -> Path:
    """Directory holding ``initdb`` and ``pg_ctl``."""
    env = os.environ.get("ARBITER_PG_BIN")
    if env and (Path(env) / "initdb").exists():
        return Path(env)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    raise PostgresUnavailable(
        "PostgreSQL server binaries not found: install the 'postgresql' package "
        "(scripts/install-tools.sh does) or set ARBITER_PG_BIN"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> str | None:
    """The unprivileged user to run the server as when we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise PostgresUnavailable("running as root and no 'postgres' or 'nobody' user exists")


class PostgresCluster:
    """One disposable cluster. Use as a context manager, or start()/stop()."""

    def __init__(
        self, *, settings: Mapping[str, str] | None = None, max_connections: int = 200
    ) -> None:
        self.bin = find_pg_bin()
        self.user = _run_as()
        self.settings = dict(FAST_TEST_SETTINGS if settings is None else settings)
        self.max_connections = max_connections
        self.base: Path | None = None
        self.port = 0
        self._started = False

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> PostgresCluster:
        self.base = Path(tempfile.mkdtemp(prefix="arbiter-pg-"))
        try:
            self._initdb()
            self._start_server()
        except BaseException:
            self._remove()
            raise
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory."""
        if self._started:
            self._started = False
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
        self._remove()

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- databases ---------------------------------------------------------

    def url(self, database: str = "postgres", *, driver: str = "psycopg") -> str:
        """SQLAlchemy URL, e.g. ``postgresql+psycopg://postgres@127.0.0.1:5433/db``."""
        return f"postgresql+{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        """libpq connection string for ``psycopg.connect``."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever still uses it."""
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # -- internals ---------------------------------------------------------

    @property
    def data(self) -> Path:
        if self.base is None:
            raise PostgresUnavailable("cluster not started")
        return self.base / "data"

    def _pg(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / tool), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    def _initdb(self) -> None:
        assert self.base is not None
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
        os.chmod(self.base, 0o700)
        try:
            self._pg(
                "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                "-E", "UTF8", "--no-locale", "--no-sync",
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise PostgresUnavailable(f"initdb failed: {exc.stderr.strip()}") from exc

    def _configure(self, port: int) -> None:
        lines = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(port),
            "unix_socket_directories": f"'{self.base}'",
            "max_connections": str(self.max_connections),
            "logging_collector": "off",
            **{key: str(value) for key, value in self.settings.items()},
        }
        conf = self.data / "postgresql.auto.conf"
        conf.write_text("".join(f"{key} = {value}\n" for key, value in lines.items()))

    def _start_server(self) -> None:
        assert self.base is not None
        log = self.base / "server.log"
        last_error = ""
        for _ in range(5):
            port = free_port()
            self._configure(port)
            try:
                self._pg("pg_ctl", "-D", str(self.data), "-l", str(log), "-w", "-t", "60", "start")
            except subprocess.CalledProcessError:
                last_error = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                continue
            self.port, self._started = port, True
            return
        raise PostgresUnavailable(f"PostgreSQL would not start:\n{last_error}")

    def _remove(self) -> None:
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None
