"""A throwaway PostgreSQL server for the tests: Debian's binaries, a data folder in /tmp, a free
port on 127.0.0.1, and a fresh database for each test that asks.

PostgreSQL refuses to run as root, so under root (CI) the server runs as the ``postgres`` user
that Debian's package creates. Durability is switched off (fsync, synchronous commits): the
server and its data live only as long as the test session.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

SERVER_USER = "postgres"  # who runs the server when the tests run as root


class Unavailable(Exception):
    """No PostgreSQL server can be started here; str(error) says why."""


def bin_dir() -> Path:
    """The newest installed PostgreSQL's programs (Debian keeps them off $PATH)."""
    if initdb := shutil.which("initdb"):
        return Path(initdb).parent
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if not found:
        raise Unavailable("PostgreSQL is not installed (no initdb; Debian: apt-get install "
                          "postgresql)")
    return found[-1].parent


class PostgresServer:
    """One server on 127.0.0.1:``port``, trusting local connections, until ``stop``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._bin = bin_dir()
        self._as_user = self._server_user()
        self.folder = Path(tempfile.mkdtemp(prefix="whatbreed-postgres-"))
        self._names = itertools.count(1)
        try:
            if self._as_user:
                shutil.chown(self.folder, self._as_user)
            self._run("initdb", "-D", str(self.folder / "data"), "--auth=trust",
                      "--username=postgres", "--encoding=UTF8", "--no-sync")
            options = (f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
            self._run("pg_ctl", "-D", str(self.folder / "data"), "-l",
                      str(self.folder / "server.log"), "-o", options, "-w", "start")
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def _server_user() -> str | None:
        if os.geteuid() != 0:
            return None
        if shutil.which("runuser") is None:
            raise Unavailable("running as root without runuser: cannot start PostgreSQL")
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise Unavailable(f"running as root, and there is no {SERVER_USER!r} user to run "
                              "PostgreSQL (Debian's postgresql package creates it)") from None
        return SERVER_USER

    def _run(self, program: str, *args: str) -> None:
        command = [str(self._bin / program), *args]
        if self._as_user:
            command = ["runuser", "-u", self._as_user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.folder / "server.log"
            raise Unavailable(f"{program} failed: {result.stderr.strip() or result.stdout}"
                              + (f"\n{log.read_text()}" if log.is_file() else ""))

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """The URL of a new, empty database."""
        import psycopg

        name = f"test_{next(self._names)}"
        with psycopg.connect(self.url().replace("+psycopg", ""), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if (self.folder / "data" / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)
