"""A private PostgreSQL cluster from Debian's server binaries (installed with apt-get when
they are missing), on 127.0.0.1 on a free port, run as the ``postgres`` user when we are root."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import logging
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from clinic.devstack.components import (
    DATABASE_NAME,
    DATABASE_USER,
    Component,
    InfrastructureError,
    Source,
    free_port,
    port_open,
    stop_pid,
    tail,
)

log = logging.getLogger(__name__)


def find_postgres_bin() -> Path | None:
    """The bin directory of the newest installed PostgreSQL server (Debian layout first)."""
    candidates = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    found = shutil.which("pg_ctl")
    if found and (Path(found).resolve().parent / "initdb").exists():
        return Path(found).resolve().parent
    return None


def install_postgres() -> Path:
    """apt-get install the server when it is missing (as root, on Debian-like systems)."""
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise InfrastructureError(
            "postgres",
            "no PostgreSQL server binaries found; install Debian's 'postgresql' "
            "package or set DATABASE_URL",
        )
    log.warning("installing PostgreSQL with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"],
    ):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise InfrastructureError(
                "postgres", f"{' '.join(command)} failed: {result.stderr[-500:]}"
            )
    directory = find_postgres_bin()
    if directory is None:
        raise InfrastructureError("postgres", "apt-get installed postgresql but no initdb found")
    return directory


def _server_user() -> str | None:
    """PostgreSQL refuses to run as root; as root we run it as the 'postgres' system user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"],
            check=True,
            capture_output=True,
        )
    return "postgres"


def _traversable_by(path: Path, user: str) -> bool:
    entry = pwd.getpwnam(user)
    groups = {entry.pw_gid, *os.getgrouplist(user, entry.pw_gid)}
    for directory in [path, *path.parents]:
        if not directory.exists():
            continue
        st = directory.stat()
        if st.st_uid == entry.pw_uid:
            allowed = bool(st.st_mode & 0o100)
        elif st.st_gid in groups:
            allowed = bool(st.st_mode & 0o010)
        else:
            allowed = bool(st.st_mode & 0o001)
        if not allowed:
            return False
    return True


def _run_as(
    user: str | None, command: list[str], **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    if user:
        kwargs.update(user=user, group=pwd.getpwnam(user).pw_gid, extra_groups=[])
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)


def _postgres_home(state_dir: Path, user: str | None) -> Path:
    """Where the cluster lives: ``<state>/postgres``, unless the server user cannot reach it
    (a checkout inside a private directory), then a private directory under the system temp
    dir, linked from the state dir."""
    home = state_dir / "postgres"
    if user is None or _traversable_by(state_dir, user):
        return home
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
    fallback = Path(tempfile.gettempdir()) / f"clinic-postgres-{digest}"
    fallback.mkdir(mode=0o700, exist_ok=True)
    if home.is_symlink() or not home.exists():
        with contextlib.suppress(FileNotFoundError):
            home.unlink()
        home.symlink_to(fallback)
    return fallback


def start_local_postgres(state_dir: Path) -> Component:
    bin_dir = find_postgres_bin() or install_postgres()
    user = _server_user()
    home = _postgres_home(state_dir, user)
    home.mkdir(parents=True, exist_ok=True)
    if user:
        entry = pwd.getpwnam(user)
        os.chown(home, entry.pw_uid, entry.pw_gid)
    data = home / "data"
    log_file = home / "postgres.log"
    if not (data / "PG_VERSION").exists():
        result = _run_as(
            user,
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                DATABASE_USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-instructions",
            ],
        )
        if result.returncode != 0:
            raise InfrastructureError("postgres", f"initdb failed: {result.stderr[-800:]}")
    port = _port(home)
    # Durability stays as shipped (fsync, synchronous commit, full page writes). New WAL
    # segments are not zero-filled first (the file system allocates as WAL is written) and
    # 1 GB of them is kept for reuse: zero-filling 16 MB in the middle of a burst of
    # commits stalled every writer for tens of milliseconds.
    options = (
        f"-p {port} -h 127.0.0.1 -k {data} -c max_connections=300 -c shared_buffers=256MB "
        "-c wal_init_zero=off -c min_wal_size=1GB -c log_min_messages=warning"
    )
    result = _run_as(
        user,
        [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log_file),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ],
        start_new_session=True,
    )
    if result.returncode != 0:
        raise InfrastructureError(
            "postgres", f"pg_ctl start failed: {result.stdout[-400:]} {tail(log_file)}"
        )
    pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    admin_url = f"postgresql://{DATABASE_USER}@127.0.0.1:{port}/postgres"
    _create_database(admin_url, DATABASE_NAME)
    return Component(
        name="postgres",
        source=Source.LOCAL,
        address=f"postgresql://{DATABASE_USER}@127.0.0.1:{port}/{DATABASE_NAME}",
        pid=pid,
        data_dir=str(data),
        bin_dir=str(bin_dir),
        run_as=user,
        log_file=str(log_file),
        flavor=postgres_version(bin_dir),
    )


def postgres_version(bin_dir: Path) -> str:
    """``postgresql 15.18``, from the server binary itself."""
    result = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=False
    )
    match = re.search(r"\d+(\.\d+)+", result.stdout)
    return f"postgresql {match.group(0) if match else '?'}"


def _port(home: Path) -> int:
    """The port of the previous start while it is free (clients keep their address), else a
    free one."""
    remembered = home / "port"
    with contextlib.suppress(OSError, ValueError):
        port = int(remembered.read_text())
        if not port_open("127.0.0.1", port):
            return port
    port = free_port()
    with contextlib.suppress(OSError):
        remembered.write_text(str(port))
    return port


def _create_database(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def stop_local_postgres(component: Component) -> None:
    if component.bin_dir and component.data_dir and Path(component.data_dir).exists():
        _run_as(
            component.run_as,
            [
                str(Path(component.bin_dir) / "pg_ctl"),
                "-D",
                component.data_dir,
                "-m",
                "fast",
                "-w",
                "-t",
                "30",
                "stop",
            ],
        )
    stop_pid(component.pid, group=False)


def postgres_answers(url: str, timeout: float = 3.0) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=max(1, round(timeout))) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True
