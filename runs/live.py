"""Live delivery of a run's progress to browsers: publish after commit, in order, never failing a run.

One Channels group per run, ``run_<id>``; the run page and the trace pages of its episodes both listen
to it (runs/consumers.py filters). Messages (``type`` picks the consumer handler):

- ``live.call``     ``{"episode", "seq", "call": <PrimitiveCallSerializer data>, "committed_at"}`` — one
  per finished primitive call; ``seq`` is the call's number in its episode (1, 2, ...), keyframes ride
  along in ``call["keyframes"]`` because the sink writes them in the call's own transaction.
- ``live.episode``  ``{"episode", "event": "started"|"reset"|"finished", "run_seq", "n_calls"}``.
- ``live.run``      ``{"run_seq", "what": "status"|"candidate"|..., ...}`` — anything else about the run.
- ``share.revoked`` ``{"link"}`` — consumers holding that share link close.

``run_seq`` is ``Run.event_seq``, bumped in the same transaction as the change it announces, so a page
that knows the last ``run_seq`` it rendered can tell whether it missed anything. ``committed_at`` (unix
seconds) is stamped when the transaction commits; bench/live_latency.py measures from it.

Publishing goes through one background thread per process with its own event loop: the engine's thread
only enqueues (microseconds), a slow or dead Redis never stalls or fails an episode, and one queue keeps
the order in which transactions committed. What a full queue or a Redis error drops, pages recover
from the database (consumers replay on gaps and on reconnect).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import queue
import threading
import time
from typing import Callable

from django.db import transaction
from django.db.models import F

from aspire_web.logfilters import Throttle, expected, one_line

log = logging.getLogger(__name__)

QUEUE_LIMIT = 10_000
#: Seconds between two warnings about the channel layer (Redis) being unreachable.
BROKEN_LOG_WINDOW_S = 30.0


def group_name(run_id: int) -> str:
    return f"run_{run_id}"


class Broadcaster:
    """A FIFO of (group, message) sent by a daemon thread; started lazily, again after a fork."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pid = None
        self._queue: queue.Queue | None = None
        self._dropped = 0

    def publish(self, group: str, message: dict) -> None:
        q = self._ensure_started()
        try:
            q.put_nowait((group, message))
        except queue.Full:
            self._dropped += 1
            if self._dropped in (1, 10, 100) or self._dropped % 1000 == 0:
                log.warning(
                    "live queue full: %d messages dropped so far (pages catch up from the database)", self._dropped
                )

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far was handed to the channel layer; False on timeout."""
        q = self._queue
        if q is None or self._pid != os.getpid():
            return True
        deadline = time.monotonic() + timeout
        while q.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)
        return not q.unfinished_tasks

    def _ensure_started(self) -> queue.Queue:
        if self._pid == os.getpid() and self._queue is not None:
            return self._queue
        with self._lock:
            # A forked worker process inherits the parent's queue object but not its thread.
            if self._pid != os.getpid() or self._queue is None:
                self._queue = queue.Queue(maxsize=QUEUE_LIMIT)
                threading.Thread(target=self._serve, args=(self._queue,), name="aspire-live", daemon=True).start()
                self._pid = os.getpid()
        return self._queue

    def _serve(self, q: queue.Queue) -> None:
        from channels.layers import get_channel_layer

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        layer = get_channel_layer()
        while True:
            group, message = q.get()
            try:
                loop.run_until_complete(layer.group_send(group, message))
            except Exception as exc:
                _broadcast_failed(f"live broadcast to {group}", exc)
            finally:
                q.task_done()


_throttle = Throttle(BROKEN_LOG_WINDOW_S)


def _broadcast_failed(what: str, exc: Exception) -> None:
    """Log a failed broadcast. Redis being away (an outage drops every event) is one warning line per
    BROKEN_LOG_WINDOW_S seconds with a count of the failures in between; anything else is a bug and keeps
    its traceback."""
    if expected(exc) is None:
        log.error("%s failed; pages catch up from the database", what, exc_info=exc)
        return
    allowed, held = _throttle.allow(type(exc).__name__)
    if allowed:
        log.warning(
            "%s failed (%s)%s; pages catch up from the database",
            what,
            one_line(exc),
            f"; {held} more failed since the last warning" if held else "",
        )


broadcaster = Broadcaster()
atexit.register(broadcaster.flush, 2.0)


def publish(run_id: int, message: dict) -> None:
    """Queue ``message`` for the run's group now (call it from an on_commit callback)."""
    broadcaster.publish(group_name(run_id), message)


def publish_on_commit(run_id: int, build: Callable[[], dict]) -> None:
    """After the current transaction commits, build the message, stamp ``committed_at`` and publish it.

    A failure here is logged and swallowed: a broadcast must never fail the run that caused it.
    """

    def send():
        try:
            message = build()
            message["committed_at"] = time.time()
            publish(run_id, message)
        except Exception as exc:
            _broadcast_failed(f"live broadcast for run {run_id}", exc)

    transaction.on_commit(send)


def bump_run_seq(run_id: int) -> int:
    """Take the run's next event number. Call inside the transaction that makes the change: the row
    update serialises concurrent writers, so numbers are handed out in commit order."""
    from .models import Run

    Run.objects.filter(pk=run_id).update(event_seq=F("event_seq") + 1)
    return Run.objects.values_list("event_seq", flat=True).get(pk=run_id)


def run_changed(run_id: int, what: str, **detail) -> int:
    """Announce a run-level change (status, a new or re-scored candidate, counters) to open pages.

    Call it inside the transaction that made the change (it opens one otherwise); returns the event
    number. The search/agents code should call this when it creates or scores candidates.
    """
    with transaction.atomic():
        seq = bump_run_seq(run_id)
        publish_on_commit(run_id, lambda: {"type": "live.run", "run_seq": seq, "what": what, **detail})
    return seq
