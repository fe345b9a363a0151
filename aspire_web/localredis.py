"""Start a private Redis server when none is configured (REDIS_URL unset).

Used by ``manage.py up`` and by the test suite, so a fresh machine needs only the redis-server
binary (scripts/install.sh installs Debian's package), never a system-wide service.

Restartable: :func:`start` with the same ``workdir`` and ``port`` starts a server at the same URL over the
same data, which is what ``up`` does when its Redis dies. With ``persist`` (the default) Redis keeps an
append-only file in ``workdir`` (fsync once a second, Redis's default policy), so the queues survive a
restart of Redis itself; nothing relies on it (the reconciler, runs.reconcile, re-sends work a lost
queue held), it only saves re-sending.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


class RedisUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def url_for(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"


def command(workdir: Path, port: int, persist: bool = True) -> list[str]:
    """The redis-server command line: 127.0.0.1 only, data and log in ``workdir``; an append-only file
    (``appendfsync everysec``) when ``persist``, no RDB snapshots either way."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisUnavailable("redis-server is not installed; run scripts/install.sh or set REDIS_URL")
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "yes" if persist else "no",
        "--appendfsync",
        "everysec",
        "--dir",
        str(workdir),
        "--logfile",
        str(workdir / "redis.log"),
    ]


def ping(port: int, timeout: float = 0.5) -> bool:
    """Whether a Redis on 127.0.0.1:``port`` answers PING (and has finished loading its data)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start(
    workdir: Path, port: int | None = None, timeout: float = 10.0, persist: bool = True, **popen
) -> tuple[subprocess.Popen, str]:
    """Start ``redis-server`` on 127.0.0.1 (a free port when ``port`` is None) and wait until it answers;
    returns (process, redis URL). ``popen`` goes to subprocess.Popen (e.g. ``start_new_session``).

    Raises RedisUnavailable when the binary is missing, or the server exits (port taken: see
    ``workdir/redis.log``) or does not answer within ``timeout`` seconds (then it is killed).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    proc = subprocess.Popen(
        command(workdir, port, persist), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **popen
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RedisUnavailable(f"redis-server exited with code {proc.returncode}; see {workdir / 'redis.log'}")
        if ping(port):
            return proc, url_for(port)
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise RedisUnavailable(f"redis-server did not answer on port {port} within {timeout} s")
