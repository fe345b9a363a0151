"""A transactional outbox: every task message is first a row, written with the work it announces.

:func:`send` writes an Outbox row in the caller's transaction and publishes it to the broker once that
transaction commits; a launch is therefore either committed with its messages or not at all, and a
broker that is away leaves the rows unsent (one log line, no traceback) for :func:`relay`, which the
reconciler runs (runs.reconcile, every 15 s in ``up`` and periodically in every worker).

Messages are hints, the database is the truth: every task is idempotent, so a message published twice
(the relay and the after-commit publisher racing, a reconciler re-sending) does nothing the second time.
Each row records the broker it went to (``broker_id``, the Redis ``run_id`` of INFO server): a Redis
that restarted has another ``run_id`` and lost its queues, so the reconciler sends that work again.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from aspire_web.logfilters import Throttle, one_line

from .models import Outbox

log = logging.getLogger(__name__)

#: Seconds a failed publication makes the next ones skip the broker (they stay unsent for the relay).
BROKER_DOWN_BACKOFF_S = 5.0
#: Seconds a looked-up broker id is reused.
BROKER_ID_TTL_S = 2.0
#: How many waiting messages of a queue the reconciler inspects (runs.outbox.Pending).
INSPECT_LIMIT = 20_000
#: How long a sent row is kept (the reconciler deletes older ones).
KEEP_SENT = timedelta(days=1)

_throttle = Throttle(30.0)
_lock = threading.Lock()
_down_until = 0.0
_broker_id: tuple[float, str | None] = (0.0, None)


def key_of(task_name: str, args) -> str:
    """The identity of a piece of work: the task's name and its JSON arguments."""
    return f"{task_name}:{json.dumps(list(args), separators=(',', ':'))}"[:255]


def default_queue() -> str:
    return settings.CELERY_TASK_DEFAULT_QUEUE


def send(task_name: str, args: tuple | list, queue: str | None = None) -> None:
    """Queue ``task_name(*args)`` on ``queue`` (default: the default queue): an Outbox row now, in the
    current transaction, published once it commits (at once outside a transaction). Never raises for
    the broker: when it is away the row stays unsent for the relay."""
    args = list(args)
    row = Outbox.objects.create(
        task_name=task_name, args=args, key=key_of(task_name, args), queue=queue or default_queue()
    )
    transaction.on_commit(lambda: _publish(row))


def relay(limit: int = 500) -> int:
    """Publish up to ``limit`` unsent rows, oldest first; returns how many were published."""
    sent = 0
    for row in Outbox.objects.filter(sent_at__isnull=True).order_by("id")[:limit]:
        if not _publish(row):
            if _broker_down():
                break
            continue
        sent += 1
    return sent


def broker_reachable() -> bool:
    """True when the broker answers now (a fresh look-up, not the cached one)."""
    return _lookup_broker_id(fresh=True) is not None


def current_broker_id() -> str | None:
    """The Redis ``run_id`` of the broker (cached for a few seconds); "" for a broker that is not
    Redis (unknown, treated as unchanging); None when it cannot be reached."""
    return _lookup_broker_id(fresh=False)


def forget_broker() -> None:
    """Drop the cached broker id and the outage back-off (the broker's URL changed, or it is back)."""
    global _down_until, _broker_id
    with _lock:
        _down_until, _broker_id = 0.0, (0.0, None)


def picked(task_name: str, args) -> None:
    """A worker started ``task_name(*args)``: its sent rows are no longer waiting in the broker."""
    Outbox.objects.filter(key=key_of(task_name, args), sent_at__isnull=False, picked_at__isnull=True).update(
        picked_at=timezone.now()
    )


def prune(now=None) -> int:
    """Delete rows sent more than a day ago; returns how many."""
    now = now or timezone.now()
    deleted, _ = Outbox.objects.filter(sent_at__lt=now - KEEP_SENT).delete()
    return deleted


# -- publishing ------------------------------------------------------------------------------------------
def _broker_down() -> bool:
    return time.monotonic() < _down_until


def _mark_down(exc: BaseException, what: str) -> None:
    global _down_until
    _down_until = time.monotonic() + BROKER_DOWN_BACKOFF_S
    allowed, held = _throttle.allow(type(exc).__name__)
    if allowed:
        extra = f" ({held} more since)" if held else ""
        log.warning("broker unreachable: %s left in the outbox for the relay: %s%s", what, one_line(exc), extra)


def _publish(row: Outbox) -> bool:
    """Publish one row unless another publisher got to it first; True when this call published it."""
    if _broker_down():
        return False
    broker = current_broker_id()
    if broker is None:
        Outbox.objects.filter(pk=row.pk, sent_at__isnull=True).update(last_error="the broker is unreachable")
        return False
    # Claim this attempt: of two publishers racing for the same row, one updates it.
    if not Outbox.objects.filter(pk=row.pk, sent_at__isnull=True, attempts=row.attempts).update(
        attempts=F("attempts") + 1
    ):
        return False
    try:
        current_app.send_task(
            row.task_name,
            tuple(row.args),
            queue=row.queue or default_queue(),
            retry=True,
            # A stale pooled connection (Redis restarted) gets one fresh try; a broker that is away fails fast.
            retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2},
        )
    except Exception as exc:
        Outbox.objects.filter(pk=row.pk).update(last_error=one_line(exc)[:2000])
        _mark_down(exc, f"{row.task_name}{tuple(row.args)}")
        return False
    Outbox.objects.filter(pk=row.pk).update(sent_at=timezone.now(), broker_id=broker or "", last_error="")
    return True


# -- the broker (Redis) ----------------------------------------------------------------------------------
def _redis():
    """A client of the broker's Redis, or None when the broker is not Redis."""
    url = settings.CELERY_BROKER_URL or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def _lookup_broker_id(fresh: bool) -> str | None:
    global _broker_id
    now = time.monotonic()
    with _lock:
        at, value = _broker_id
        if not fresh and value is not None and now - at < BROKER_ID_TTL_S:
            return value
    try:
        client = _redis()
        if client is None:
            value = ""
        else:
            try:
                value = str(client.info("server").get("run_id", ""))
            finally:
                client.close()
    except Exception as exc:
        _mark_down(exc, "messages")
        value = None
    with _lock:
        _broker_id = (time.monotonic(), value)
    return value


def queue_names() -> list[str]:
    """The queues the project's tasks go to: the default one and any named in ``ASPIRE["QUEUES"]``."""
    names = [default_queue()] + [q for q in settings.ASPIRE.get("QUEUES", {}).values() if q]
    return list(dict.fromkeys(names))


def queued_messages() -> int | None:
    """Messages waiting in the broker's queues (not those a worker reserved); None when unreachable."""
    try:
        client = _redis()
        if client is None:
            return None
        try:
            return sum(int(client.llen(name)) for name in queue_names())
        finally:
            client.close()
    except Exception:
        return None


def _key_of_message(envelope) -> str | None:
    """The work key of one kombu Redis message: a JSON envelope whose base64 body is Celery's
    protocol-2 ``[args, kwargs, embed]`` and whose headers name the task (None: not one of ours)."""
    try:
        if isinstance(envelope, (bytes, str)):
            envelope = json.loads(envelope)
        task = envelope["headers"]["task"]
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        return key_of(task, json.loads(body)[0])
    except Exception:  # another producer's message: not ours to judge
        return None


def broker_view(limit: int = INSPECT_LIMIT) -> tuple[set[str], set[str]] | None:
    """What the broker holds: ``(waiting, reserved)``, the work keys of the messages waiting in the
    project's queues and of those a worker has reserved and not acknowledged (kombu's ``unacked`` hash);
    None when the broker is not Redis or cannot be read."""
    try:
        client = _redis()
        if client is None:
            return None
        try:
            raw = [m for name in queue_names() for m in client.lrange(name, 0, limit - 1)]
            unacked = client.hvals("unacked")[:limit]
        finally:
            client.close()
    except Exception:
        return None
    waiting = {k for k in map(_key_of_message, raw) if k}
    reserved = set()
    for entry in unacked:
        try:
            key = _key_of_message(json.loads(entry)[0])
        except Exception:
            key = None
        if key:
            reserved.add(key)
    return waiting, reserved


#: Seconds a just-sent message counts as in flight whatever the broker shows (a worker may be taking it
#: from the queue at the moment the broker is read).
SEND_GRACE_S = 10.0


class Pending:
    """What is in flight now, for one pass of the reconciler. A piece of work (a task and its args) is in
    flight when an Outbox row for it is unsent, or was sent in the last SEND_GRACE_S seconds and not
    picked up yet, or the broker holds a message for it: waiting in a queue, or reserved by a worker
    that has not started it, for at most RESERVED_GRACE_SECONDS after it was sent (longer, its worker
    died holding it: a warming-up worker starts it well within that). Work a worker started is the
    database's to judge (its owner's heartbeat).
    When the broker cannot be read, a row sent to the current broker (same Redis ``run_id``) within
    RESEND_AFTER_SECONDS and not picked up counts instead.

    :meth:`send` queues work that is not in flight (and counts it as in flight from then on), so one
    pass never sends the same work twice and a second pass right after sends nothing."""

    def __init__(self, now=None):
        now = now or timezone.now()
        resend = timedelta(seconds=float(settings.ASPIRE.get("RESEND_AFTER_SECONDS", 600)))
        rows = Outbox.objects.all()
        fresh = Q(sent_at__isnull=True) | Q(sent_at__gte=now - timedelta(seconds=SEND_GRACE_S), picked_at__isnull=True)
        self.keys: set[str] = set(rows.filter(fresh).values_list("key", flat=True))
        unpicked = rows.filter(sent_at__gte=now - resend, picked_at__isnull=True)
        view = broker_view()
        if view is None:
            broker = current_broker_id()
            if broker:  # rows sent to another broker (one that restarted) were lost with its queues
                unpicked = unpicked.filter(broker_id=broker)
            self.keys |= set(unpicked.values_list("key", flat=True))
        else:
            waiting, reserved = view
            self.keys |= waiting
            if reserved:
                # A reserved message is started at once by a live worker (acks_late with a prefetch of one
                # per process: only a process that is still warming up holds one unstarted). One reserved
                # and unstarted for longer belongs to a worker that died holding it (the broker gives it
                # back only after its visibility timeout): send the work again; a duplicate is harmless.
                held = timedelta(seconds=float(settings.ASPIRE.get("RESERVED_GRACE_SECONDS", 120)))
                recent = unpicked.filter(key__in=reserved, sent_at__gte=now - held)
                self.keys |= set(recent.values_list("key", flat=True))
        self.sent = 0

    def has(self, task_name: str, args) -> bool:
        return key_of(task_name, args) in self.keys

    def send(self, task_name: str, args, queue: str | None = None) -> bool:
        """Send the work unless it is in flight; True when it was sent."""
        key = key_of(task_name, args)
        if key in self.keys:
            return False
        self.keys.add(key)
        send(task_name, args, queue)
        self.sent += 1
        return True
