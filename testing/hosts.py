"""Workers that are really apart: forked worker processes racing on one database (:func:`race`), and the
pieces of the two-host test (runs/tests/test_two_hosts.py): a fresh PostgreSQL database, a private Redis,
an S3-compatible server (moto's standalone server), and ``web``/``worker`` processes each started in a
directory of its own, as on separate machines.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The PostgreSQL server of the tests (CI's and this machine's): trust auth, user postgres.
POSTGRES_URL = os.environ.get("ASPIRE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


# -- racing workers ----------------------------------------------------------------------------------------
class RaceError(AssertionError):
    """A racing worker raised (its traceback is the message) or did not finish in time."""


def _child(index: int, call, results) -> None:
    from django.db import connections

    try:
        results.put((index, True, call()))
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
        results.put((index, False, traceback.format_exc()))
    finally:
        connections.close_all()


def race(*calls, timeout_s: float = 120.0) -> list:
    """Run each of ``calls`` (callables without arguments) in its own forked process at the same time and
    return their results in order. Each process is a worker of its own: its own database connection, its
    own worker identity (runs.heartbeat.worker_name has the pid) and heartbeat; only the database (and
    whatever multiprocessing primitives the calls share, e.g. a ``multiprocessing.Barrier`` made before the
    call) joins them. Results must pickle. Raises :class:`RaceError` with the worker's traceback when one
    raised, or when one is still running after ``timeout_s`` (it is killed).

    Call it inside a ``transactional_db`` test (a ``db`` test's transaction is invisible to other
    connections); the caller's connections are closed first so no child shares one."""
    from django.db import connections

    ctx = multiprocessing.get_context("fork")
    connections.close_all()
    results = ctx.Queue()
    processes = [ctx.Process(target=_child, args=(i, call, results), daemon=True) for i, call in enumerate(calls)]
    for p in processes:
        p.start()
    got: dict[int, tuple[bool, object]] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < len(calls):
            left = deadline - time.monotonic()
            if left <= 0:
                raise RaceError(f"{len(calls) - len(got)} racing worker(s) still running after {timeout_s} s")
            try:
                index, ok, value = results.get(timeout=min(left, 1.0))
            except Exception:  # queue.Empty
                dead = [i for i, p in enumerate(processes) if i not in got and p.exitcode not in (None, 0)]
                if dead:
                    raise RaceError(f"racing worker(s) {dead} died (exit {processes[dead[0]].exitcode})") from None
                continue
            got[index] = (ok, value)
    finally:
        for p in processes:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()
    for index in range(len(calls)):
        ok, value = got[index]
        if not ok:
            raise RaceError(f"racing worker {index} raised:\n{value}")
    return [got[i][1] for i in range(len(calls))]


def rendezvous(barrier, timeout_s: float) -> bool:
    """Wait at a ``multiprocessing.Barrier`` for the other racers, at most ``timeout_s``; False when they
    did not all come (one is blocked elsewhere, e.g. waiting for a row lock the caller holds)."""
    import threading

    try:
        barrier.wait(timeout_s)
        return True
    except threading.BrokenBarrierError:
        return False


# -- services of the two-host test -------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_reachable(url: str = POSTGRES_URL) -> str:
    """ "" when the PostgreSQL server of ``url`` answers, else why not."""
    try:
        import psycopg
    except ImportError as exc:
        return f"psycopg is not installed ({exc})"
    try:
        with psycopg.connect(_libpq(url), connect_timeout=3):
            return ""
    except Exception as exc:  # noqa: BLE001 - any failure means "not here"
        return f"no PostgreSQL at {url}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"


def _libpq(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


@contextmanager
def fresh_postgres_database(url: str = POSTGRES_URL):
    """A new, empty database on the server of ``url`` for the block; yields its URL; dropped afterwards
    (its connections ended first)."""
    import psycopg

    name = f"aspire_hosts_{uuid.uuid4().hex[:12]}"
    base, _, _ = url.rpartition("/")
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(_libpq(url), autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@contextmanager
def private_redis(directory: Path):
    """A Redis of its own (aspire_web/localredis.py) for the block; yields its URL."""
    from aspire_web import localredis

    directory.mkdir(parents=True, exist_ok=True)
    process, url = localredis.start(directory)
    try:
        yield url
    finally:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def moto_s3_server(directory: Path):
    """moto's standalone S3 server (``moto_server``), a real HTTP process, for the block; yields its
    endpoint URL. Raises RuntimeError when moto's server is not installed or does not start."""
    port = free_port()
    log = open(directory / "moto.log", "wb")
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=directory)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_port(port, process, 30, "moto's S3 server", directory / "moto.log")
        yield url
    finally:
        stop(process)
        log.close()


def wait_port(port: int, process: subprocess.Popen, timeout_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}): {tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on {port} in {timeout_s} s: {tail(log)}")


def tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_bytes()[-n:].decode(errors="replace")
    except OSError:
        return "(no log)"


def stop(process: subprocess.Popen, grace_s: float = 20) -> None:
    """SIGTERM the process's group, then SIGKILL what is left after ``grace_s``."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        kill(process)


def kill(process: subprocess.Popen) -> None:
    """SIGKILL the process and its group (a machine that lost power)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait(timeout=30)


# -- hosts ---------------------------------------------------------------------------------------------------
@dataclass
class Host:
    """A process of the deployment started as on a machine of its own: its own working directory (``cwd``)
    and media root (``ASPIRE_MEDIA_ROOT`` inside it), the shared services only through the environment."""

    name: str
    directory: Path
    process: subprocess.Popen
    log: Path
    env: dict = field(repr=False)

    def alive(self) -> bool:
        return self.process.poll() is None


class Deployment:
    """One database, one Redis, one storage, and hosts started against them (see the module docstring).

    ``env`` holds the settings every host gets (DATABASE_URL, REDIS_URL, storage, timeouts); a host adds
    its own working directory and media root."""

    def __init__(self, directory: Path, env: dict):
        self.directory = directory
        self.env = env
        self.hosts: list[Host] = []

    def _start(self, name: str, command: list[str], extra: dict | None = None) -> Host:
        home = self.directory / name
        home.mkdir(parents=True, exist_ok=True)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("ASPIRE_", "DJANGO_", "DATABASE_URL"))},
            **self.env,
            "DJANGO_SETTINGS_MODULE": "aspire_web.settings.local",
            "ASPIRE_VAR_DIR": str(home / "var"),
            "ASPIRE_MEDIA_ROOT": str(home / "media"),
            "PYTHONPATH": str(ROOT),
            **(extra or {}),
        }
        log = home / f"{name}.log"
        out = open(log, "wb")
        process = subprocess.Popen(
            command, cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        out.close()
        host = Host(name, home, process, log, env)
        self.hosts.append(host)
        return host

    def manage(self, *args: str, timeout_s: float = 300) -> str:
        """Run ``manage.py <args>`` with the deployment's settings (from a directory of its own)."""
        home = self.directory / "admin"
        home.mkdir(parents=True, exist_ok=True)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("ASPIRE_", "DJANGO_", "DATABASE_URL"))},
            **self.env,
            "DJANGO_SETTINGS_MODULE": "aspire_web.settings.local",
            "ASPIRE_VAR_DIR": str(home / "var"),
            "ASPIRE_MEDIA_ROOT": str(home / "media"),
        }
        done = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=home,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        if done.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def web(self, port: int) -> Host:
        """Daphne serving the site (as ``up`` does), static files by WhiteNoise's finders."""
        host = self._start(
            "web",
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "aspire_web.asgi:application"],
        )
        wait_port(port, host.process, 60, "the web process", host.log)
        return host

    def worker(self, name: str, queues: str = "aspire", concurrency: int = 1) -> Host:
        """A Celery worker of the project's app (prefork, ``concurrency`` processes) on ``queues``."""
        return self._start(
            name,
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "aspire_web",
                "worker",
                "-l",
                "INFO",
                "-Q",
                queues,
                "-c",
                str(concurrency),
                "-n",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
        )

    def close(self) -> None:
        for host in reversed(self.hosts):
            stop(host.process)


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
