"""Logs without tracebacks for the conditions an instance expects to meet: the broker or Redis away, the
database locked or unreachable, a browser that hung up. Those are logged as one line (``<message>:
<ExceptionType>: <text>``), and a run of identical lines is thinned to one per ``window`` seconds with a
count of the ones left out. Every other error keeps its traceback.

Wiring: ``LOGGING`` (aspire_web/settings/base.py) puts :class:`OneLineExpected` on the console handler, so
whatever reaches it (django, daphne, channels, celery, the apps) passes through; the Celery worker
replaces the root handlers with its own, so the ``after_setup_logger`` / ``after_setup_task_logger``
signals below put the filter on those too (aspire_web/celery.py imports this module).
"""

from __future__ import annotations

import logging
import threading
import time

from celery import signals

#: Seconds between two identical one-line records; the ones in between are counted, not printed.
WINDOW_S = 30.0


def _expected_types() -> tuple[type, ...]:
    # ConnectionError: refused, reset, aborted, broken pipe (a browser or a server that hung up).
    found: list[type] = [ConnectionError, TimeoutError]
    try:
        import redis.exceptions

        found += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.BusyLoadingError]
    except ImportError:  # pragma: no cover - redis is a dependency
        pass
    try:
        import kombu.exceptions

        found.append(kombu.exceptions.OperationalError)
    except ImportError:  # pragma: no cover - kombu is a dependency
        pass
    try:
        from django.db import InterfaceError, OperationalError

        found += [OperationalError, InterfaceError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(found)


_EXPECTED: tuple[type, ...] | None = None


def expected(exc: BaseException | None) -> BaseException | None:
    """The exception in ``exc``'s chain (itself, its ``__cause__`` or ``__context__``, 10 deep at most)
    that is an expected condition, or None when none is: Redis/broker connection errors, database
    OperationalError/InterfaceError (locked, unreachable), a client that disconnected."""
    global _EXPECTED
    if _EXPECTED is None:
        _EXPECTED = _expected_types()
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, _EXPECTED):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def one_line(exc: BaseException) -> str:
    """``ExceptionType: first line of its text`` (at most 300 characters)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


class Throttle:
    """Lets a key through at most once per ``window`` seconds and counts the rest.

    ``allow(key)`` returns (True, n) when the key may be logged now, n being how many times it was held
    back since it last was; (False, 0) otherwise. Thread-safe."""

    def __init__(self, window: float = WINDOW_S):
        self.window = window
        self._lock = threading.Lock()
        self._state: dict = {}

    def allow(self, key) -> tuple[bool, int]:
        now = time.monotonic()
        with self._lock:
            last, held = self._state.get(key, (None, 0))
            if last is not None and now - last < self.window:
                self._state[key] = (last, held + 1)
                return False, 0
            self._state[key] = (now, 0)
            if len(self._state) > 1000:  # keys are logger names and exception types: few; stay bounded anyway
                self._state = {key: (now, 0)}
            return True, held


class OneLineExpected(logging.Filter):
    """Turns a record whose exception is an expected condition into one line without traceback, and
    lets one such line per (logger, exception type, level) through every ``window`` seconds."""

    def __init__(self, name: str = "", window: float = WINDOW_S):
        super().__init__(name)
        self.throttle = Throttle(window)

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        found = expected(exc)
        if found is None:
            return True
        allowed, held = self.throttle.allow((record.name, type(found).__name__, record.levelno))
        if not allowed:
            return False
        message = f"{record.getMessage()}: {one_line(found)}"
        if held:
            message += f" ({held} more like this in the last {self.throttle.window:.0f} s)"
        record.msg, record.args = message, None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Put one :class:`OneLineExpected` on every handler of ``logger`` (default: root) that has none."""
    logger = logger or logging.getLogger()
    for handler in logger.handlers:
        if not any(isinstance(f, OneLineExpected) for f in handler.filters):
            handler.addFilter(OneLineExpected())


@signals.after_setup_logger.connect(weak=False)
def _celery_logger(logger=None, **kwargs):
    install(logger)


@signals.after_setup_task_logger.connect(weak=False)
def _celery_task_logger(logger=None, **kwargs):
    install(logger)
