"""Who is alive: every process that works on runs beats a heartbeat, and the rows it works on carry it.

A worker process has one WorkerHeartbeat row (``name`` = :func:`worker_name`). A daemon thread beats every
:data:`HEARTBEAT_SECONDS`: it refreshes that row's ``beat_at`` and the ``heartbeat_at`` of the Run, Episode
and Actor rows the process *holds* right now (:func:`hold`, entered by runs.work and the experiment
steps around the work itself). A row whose owner stopped beating for :func:`owner_timeout` seconds has no
live owner, and the reconciler (runs.reconcile) retakes it.

Two modes of the thread:

- a Celery worker process (``start_heartbeat_thread()``, from the worker signals in runs.tasks) keeps its
  row beating while idle, so the pool's health shows idle workers too; its row is deleted when it stops
  cleanly;
- any other process that runs work in-process (``manage.py run_program``, a test) starts the thread in
  *lease* mode when it first claims something (:func:`ensure_beating`): it beats only while it holds
  rows and never creates its WorkerHeartbeat row from the thread (the claim writes it, in the claim's
  own transaction), so nothing outlives a rolled-back test transaction.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from aspire_web.logfilters import Throttle, one_line

log = logging.getLogger(__name__)

#: Seconds between two beats of a process (well under the owner timeout: 6 beats may be missed).
HEARTBEAT_SECONDS = 5
_DEFAULT_OWNER_TIMEOUT = 30.0

_throttle = Throttle(60.0)


def owner_timeout() -> float:
    """Seconds without a heartbeat after which an owner is dead: ``ASPIRE["OWNER_TIMEOUT_SECONDS"]`` (30)."""
    return float(settings.ASPIRE.get("OWNER_TIMEOUT_SECONDS", _DEFAULT_OWNER_TIMEOUT))


def worker_name() -> str:
    """This process's identity, ``aspire@<host>:<pid>`` (a forked child has its own)."""
    return f"aspire@{socket.gethostname()}:{os.getpid()}"


# -- what this process holds -----------------------------------------------------------------------------
class _State:
    def __init__(self):
        self.lock = threading.Lock()
        self.holds: dict[tuple[str, int], str] = {}
        self.pid: int | None = None
        self.thread: threading.Thread | None = None
        self.stop = threading.Event()
        self.always_on = False
        self.queues: list[str] = []
        self.started_at = None


_state = _State()

_KINDS = ("run", "episode", "actor")


def _model(kind: str):
    from .models import Actor, Episode, Run

    return {"run": Run, "episode": Episode, "actor": Actor}[kind]


def acquire(kind: str, pk: int, label: str = "") -> bool:
    """This process holds row ``pk`` of ``kind`` ("run", "episode" or "actor") from now on: the heartbeat
    thread refreshes its ``heartbeat_at`` (while its ``worker`` is this process). False when this process
    already held it (another thread of it works on it)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    key = (kind, int(pk))
    with _state.lock:
        if key in _state.holds:
            return False
        _state.holds[key] = label or f"{kind} {pk}"
        return True


def drop(kind: str, pk: int) -> None:
    """This process no longer holds that row."""
    with _state.lock:
        _state.holds.pop((kind, int(pk)), None)


def drop_all() -> None:
    """Forget every hold of this process (a test's teardown)."""
    with _state.lock:
        _state.holds.clear()


@contextlib.contextmanager
def hold(kind: str, pk: int, label: str = ""):
    """Hold the row while the block runs (:func:`acquire`, then :func:`drop`)."""
    acquire(kind, pk, label)
    try:
        yield
    finally:
        drop(kind, pk)


def holds(kind: str, pk: int) -> bool:
    """True while this process holds that row (it is working on it now)."""
    with _state.lock:
        return (kind, int(pk)) in _state.holds


def busy_with() -> str:
    """What this process works on, e.g. "episode 123" ("" when idle)."""
    with _state.lock:
        return next(reversed(_state.holds.values()), "")[:200]


# -- beating ---------------------------------------------------------------------------------------------
def touch(queues: list[str] | None = None) -> None:
    """Write this process's WorkerHeartbeat row now (create or refresh), in the caller's transaction."""
    from .models import WorkerHeartbeat

    now = timezone.now()
    name = worker_name()
    defaults = {"beat_at": now, "busy_with": busy_with(), "host": socket.gethostname(), "pid": os.getpid()}
    if queues is not None:
        defaults["queues"] = list(queues)
    row, created = WorkerHeartbeat.objects.get_or_create(
        name=name, defaults={**defaults, "started_at": _state.started_at or now, "queues": list(_state.queues)}
    )
    if not created:
        WorkerHeartbeat.objects.filter(pk=row.pk).update(**defaults)


def beat() -> None:
    """One heartbeat: the worker row, and ``heartbeat_at`` of every row held by this process."""
    from .models import WorkerHeartbeat

    now = timezone.now()
    with _state.lock:
        held = dict(_state.holds)
        always_on = _state.always_on
    me = worker_name()
    if always_on:
        touch()
    elif held:
        # Lease mode: refresh, never create (the claim created it; a missing row was rolled back).
        WorkerHeartbeat.objects.filter(name=me).update(beat_at=now, busy_with=busy_with())
    by_kind: dict[str, list[int]] = {}
    for kind, pk in held:
        by_kind.setdefault(kind, []).append(pk)
    for kind, pks in by_kind.items():
        _model(kind).objects.filter(pk__in=pks, worker=me).update(heartbeat_at=now)


def _loop(stop: threading.Event) -> None:
    """Beat now, then every HEARTBEAT_SECONDS until ``stop``; on this thread's own database connection
    (never one a forked process inherited)."""
    while True:
        try:
            close_old_connections()
            beat()
        except Exception as exc:  # a locked or unreachable database: try again at the next beat
            allowed, held = _throttle.allow(type(exc).__name__)
            if allowed:
                extra = f" ({held} more since)" if held else ""
                log.warning("heartbeat of %s failed: %s%s", worker_name(), one_line(exc), extra)
        if stop.wait(HEARTBEAT_SECONDS):
            return


def _start(always_on: bool) -> None:
    with _state.lock:
        alive = _state.pid == os.getpid() and _state.thread is not None and _state.thread.is_alive()
        if always_on:
            _state.always_on = True
        if alive:
            return
        if _state.pid != os.getpid():  # a forked child: nothing of the parent's holds is ours
            _state.holds.clear()
            _state.always_on = always_on
        _state.pid = os.getpid()
        _state.started_at = timezone.now()
        _state.stop = threading.Event()
        _state.thread = threading.Thread(target=_loop, args=(_state.stop,), name="aspire-heartbeat", daemon=True)
        _state.thread.start()


def start_heartbeat_thread(queues: list[str] | None = None) -> None:
    """Start this process's heartbeat thread (idempotent; again in a forked child); it beats at once.

    For worker processes: the WorkerHeartbeat row is kept beating while idle. ``queues``: the Celery
    queues this worker consumes (shown by :func:`pool_health`)."""
    if queues is not None:
        _state.queues = list(queues)
    _start(always_on=True)


def ensure_beating() -> None:
    """Make sure a heartbeat thread runs in this process (lease mode unless a worker started it)."""
    _start(always_on=False)


def stop_heartbeat_thread(forget: bool = True) -> None:
    """Stop beating (a worker shutting down cleanly); ``forget`` deletes this process's row."""
    from .models import WorkerHeartbeat

    with _state.lock:
        _state.stop.set()
        _state.always_on = False
        _state.thread = None
    if forget:
        try:
            WorkerHeartbeat.objects.filter(name=worker_name()).delete()
        except Exception as exc:
            log.warning("could not remove the heartbeat row of %s: %s", worker_name(), one_line(exc))


# -- who is alive ----------------------------------------------------------------------------------------
def live_workers(now=None):
    """WorkerHeartbeat rows beaten within :func:`owner_timeout` seconds of ``now`` (a QuerySet)."""
    from .models import WorkerHeartbeat

    now = now or timezone.now()
    return WorkerHeartbeat.objects.filter(beat_at__gte=now - timedelta(seconds=owner_timeout()))


def _dead_here(name: str) -> bool:
    """True when ``name`` is a process of this host that no longer exists (no need to wait for the
    timeout: a killed worker child's episode is retaken as soon as its message is redelivered)."""
    try:
        host, pid = name.rsplit("@", 1)[1].rsplit(":", 1)
        pid = int(pid)
    except (IndexError, ValueError):
        return False
    if host != socket.gethostname() or pid == os.getpid() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it exists, as another user
        return False
    return False


def is_live(name: str) -> bool:
    """True when the worker ``name`` has beaten within the owner timeout (and, on this host, its
    process still exists)."""
    if not name or _dead_here(name):
        return False
    return live_workers().filter(name=name).exists()


def owner_alive(worker: str, heartbeat_at, now=None) -> bool:
    """Whether a row owned by ``worker`` with its last heartbeat at ``heartbeat_at`` still has a live
    owner: an owner, a heartbeat on the row within the owner timeout, and (on this host) its process.

    The row's own heartbeat is what counts: the thread refreshes it only while the owner works on the
    row, so a row a live process dropped (its step raised) goes stale too."""
    if not worker or heartbeat_at is None or _dead_here(worker):
        return False
    now = now or timezone.now()
    return (now - heartbeat_at).total_seconds() < owner_timeout()


def pool_health() -> dict:
    """The worker pool now: ``{"live": int, "workers": [{"name", "host", "pid", "beat_age_s",
    "busy_with"}], "queued_messages": int | None}``. ``live`` counts live Celery worker processes (rows
    with queues; a ``run_program`` process beats without any); ``workers`` lists every live process;
    ``queued_messages`` is the number of messages waiting in the broker's queues (None when unreachable)."""
    from .outbox import queued_messages

    now = timezone.now()
    rows = list(live_workers(now).order_by("name"))
    return {
        "live": sum(1 for r in rows if r.queues and not _dead_here(r.name)),
        "workers": [
            {
                "name": r.name,
                "host": r.host,
                "pid": r.pid,
                "beat_age_s": round((now - r.beat_at).total_seconds(), 1),
                "busy_with": r.busy_with,
            }
            for r in rows
            if not _dead_here(r.name)
        ],
        "queued_messages": queued_messages(),
    }
