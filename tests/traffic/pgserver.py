"""A throwaway PostgreSQL server on 127.0.0.1 for the tests: initdb in a temp dir, pg_ctl start, stop, rm.

Debian's ``postgresql`` package (``initdb``/``pg_ctl`` in ``/usr/lib/postgresql/<v>/bin``, often linked
from ``/usr/local/bin``). As root the server runs as the ``postgres`` user (initdb refuses root), its data
directory owned by that user. ``unavailable()`` is the reason the server cannot start here, or None; with
``EQUIV_REQUIRE_POSTGRES=1`` (CI) a test that needs it fails instead of skipping.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

REQUIRE_ENV = "EQUIV_REQUIRE_POSTGRES"
ADMIN = "equiv_admin"


def required() -> bool:
    return os.environ.get(REQUIRE_ENV) == "1"


def pg_bin() -> Path | None:
    """The folder holding initdb and pg_ctl (the newest Debian one), or None."""
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += [Path(d) for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    return next((d for d in candidates if (d / "initdb").is_file() and (d / "pg_ctl").is_file()), None)


def unavailable() -> str | None:
    """Why no server can be started here (None: it can)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'equiv[postgres]')"
    if pg_bin() is None:
        return "no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
    return None


@dataclass
class PgServer:
    host: str
    port: int
    admin_password: str
    base: Path

    def url(self, user: str, password: str | None, db: str, **params: str) -> str:
        auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password is not None else "")
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
        return f"postgresql://{auth}@{self.host}:{self.port}/{db}" + (f"?{query}" if query else "")

    def connect(self, db: str = "postgres", user: str = ADMIN, password: str | None = None, **kw: Any) -> Any:
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            dbname=db,
            user=user,
            password=password if password is not None else self.admin_password,
            **kw,
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(_as_server_user(cmd), cwd=cwd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stdout}\n{done.stderr}")


def start() -> PgServer:
    """initdb + pg_ctl start on a free port of 127.0.0.1 (password auth only); ``stop()`` undoes it."""
    bindir = pg_bin()
    assert bindir is not None
    base = Path(tempfile.mkdtemp(prefix="equiv-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(base, user.pw_uid, user.pw_gid)
    password = secrets.token_hex(16)
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        os.chown(sock, pwd.getpwnam("postgres").pw_uid, -1)
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", ADMIN, "--pwfile", str(pwfile)]
    _run([*initdb, "--auth", "scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync"], base)
    pwfile.unlink()
    last: Exception | None = None
    for _ in range(3):  # a free port may be taken before the server binds it: try another
        port = _free_port()
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off -c full_page_writes=off"
        try:
            _run(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(base / "log"),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    opts,
                    "start",
                ],
                base,
            )
        except RuntimeError as e:
            last = e
            time.sleep(0.5)
            continue
        return PgServer("127.0.0.1", port, password, base)
    log = (base / "log").read_text() if (base / "log").exists() else ""
    shutil.rmtree(base, ignore_errors=True)
    raise RuntimeError(f"the PostgreSQL server did not start: {last}\n{log[-2000:]}")


def stop(server: PgServer) -> None:
    bindir = pg_bin()
    if bindir is not None and (server.base / "data").exists():
        try:
            _run([str(bindir / "pg_ctl"), "-D", str(server.base / "data"), "-m", "fast", "-w", "stop"], server.base)
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
    shutil.rmtree(server.base, ignore_errors=True)
