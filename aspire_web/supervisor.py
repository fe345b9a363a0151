"""Process supervision for ``manage.py up`` (plain Python, no Django): start a few child processes, restart
the one that dies, alone, with exponential backoff, and stop them in order with a grace period.

- A child that exits while the supervisor is not stopping is restarted after ``first_delay`` seconds
  (1 s), then 2 s, 4 s, … up to ``max_delay`` (30 s) for each further consecutive death; a child that
  stayed up ``stable_after`` seconds (60 s) before dying starts the series again at 1 s. Every death is
  one log line: ``worker exited with code -9; restarting in 1 s (restart 1)`` (a negative code is the
  signal that killed it; the count is the child's restarts since the supervisor started). What is left
  of a dead child's process group (its own children) is killed before it is started again.
- A child that fails to start (``spawn`` raised) is retried on the same schedule.
- :meth:`Supervisor.stop` stops the children in the order given: each gets its stop signal (SIGTERM),
  is waited for up to its timeout, then its whole process group is SIGKILLed. ``force`` (an Event, set
  by a second Ctrl-C) cuts every wait short.

Children are started by their ``spawn`` callables; :func:`child_options` gives the Popen options that
make a child a session leader (so its process group can be killed as a whole, and a terminal's Ctrl-C
reaches only the supervisor, which decides the order) that dies with the supervisor (Linux's
parent-death signal, SIGTERM), so a supervisor killed with SIGKILL leaves no orphans holding its ports.
The parent-death signal follows the *thread* that started the child: call :meth:`Supervisor.run` from a
thread that lives as long as the children (``up`` uses its main thread). The preexec function that sets
it only calls a libc function looked up beforehand, which is safe in a process with other threads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

#: Seconds before the first restart, the cap of the doubling, and how long a child must have run for
#: its next death to count as a first one again. Chosen, not measured: a crash loop costs at most one
#: start every 30 s, and a child that ran a minute died of something new.
FIRST_DELAY_S = 1.0
MAX_DELAY_S = 30.0
STABLE_AFTER_S = 60.0

_PR_SET_PDEATHSIG = 1


def backoff(failures: int, first: float = FIRST_DELAY_S, cap: float = MAX_DELAY_S) -> float:
    """Seconds to wait before the restart that follows ``failures`` consecutive deaths (1 -> first,
    2 -> 2 x first, … capped at ``cap``)."""
    return min(cap, first * 2 ** max(0, failures - 1))


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec function setting SIGTERM as the parent-death signal (Linux), or None elsewhere. The
    libc function is looked up here, in the parent: the preexec function only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    args = (ctypes.c_int(_PR_SET_PDEATHSIG), ctypes.c_ulong(signal.SIGTERM), ctypes.c_ulong(0), ctypes.c_ulong(0))

    def preexec() -> None:
        prctl(*args)

    return preexec


_PREEXEC = _parent_death_signal()


def child_options() -> dict:
    """Popen keyword arguments for a supervised child: its own session (and process group), and SIGTERM
    when the thread that started it (the supervisor's) dies."""
    options: dict = {"start_new_session": True}
    if _PREEXEC is not None:
        options["preexec_fn"] = _PREEXEC
    return options


@dataclass
class Program:
    """A child to supervise. ``spawn`` starts it (and may wait until it is ready) and returns the
    process, or raises; ``stop_timeout`` is the default wait between the stop signal and SIGKILL."""

    name: str
    spawn: Callable[[], subprocess.Popen]
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 10.0


@dataclass
class Child:
    program: Program
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    failures: int = 0
    next_start: float | None = None
    last_pid: int | None = None
    leads_group: bool = False
    history: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.program.name

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    """Runs ``programs`` (started in the given order). ``log`` receives one line per event;
    ``on_change`` is called after every start or death (e.g. to write the pids somewhere)."""

    def __init__(
        self,
        programs: list[Program],
        log: Callable[[str], None] = print,
        *,
        first_delay: float = FIRST_DELAY_S,
        max_delay: float = MAX_DELAY_S,
        stable_after: float = STABLE_AFTER_S,
        on_change: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.children = {p.name: Child(p) for p in programs}
        self.log = log
        self.first_delay, self.max_delay, self.stable_after = first_delay, max_delay, stable_after
        self.on_change = on_change
        self.clock = clock
        self.stopping = False
        self._lock = threading.RLock()

    # -- running ------------------------------------------------------------------------------------
    def pids(self) -> dict[str, int | None]:
        """The pid of each running child (None while it is down)."""
        with self._lock:
            return {name: c.proc.pid if c.alive() else None for name, c in self.children.items()}

    def start(self, names: list[str] | None = None) -> None:
        """Start the named children (default: all, in order) that are not running. A spawn that raises
        is logged and retried later (:meth:`check`); start-up errors the caller wants to see first are
        best raised by calling ``spawn`` itself."""
        for name in names or list(self.children):
            child = self.children[name]
            if not child.alive():
                self._start(child)

    def adopt(self, name: str, proc: subprocess.Popen) -> None:
        """Supervise ``proc``, started by the caller, as the child ``name`` (its first start)."""
        with self._lock:
            self._took(self.children[name], proc)
        self._changed()

    def check(self) -> None:
        """One pass: notice children that died (log, schedule a restart) and start those that are due."""
        if self.stopping:
            return
        now = self.clock()
        for child in self.children.values():
            with self._lock:
                proc = child.proc
                if proc is not None and proc.poll() is not None:
                    self._died(child, proc.returncode, now)
                due = child.proc is None and child.next_start is not None and now >= child.next_start
            if due and not self.stopping:
                self._start(child)

    def run(self, stop: threading.Event, interval: float = 0.25) -> None:
        """:meth:`check` every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            self.check()
            stop.wait(interval)

    def _died(self, child: Child, code: int, now: float) -> None:
        up_for = now - child.started_at
        child.proc = None
        _kill_group(child)
        if up_for >= self.stable_after:
            child.failures = 0
        child.failures += 1
        child.restarts += 1
        delay = backoff(child.failures, self.first_delay, self.max_delay)
        child.next_start = now + delay
        child.history.append(("exited", code, up_for))
        self.log(f"{child.name} exited with code {code}; restarting in {delay:g} s (restart {child.restarts})")
        self._changed()

    def _start(self, child: Child) -> None:
        try:
            proc = child.program.spawn()
        except Exception as exc:
            with self._lock:
                child.failures += 1
                delay = backoff(child.failures, self.first_delay, self.max_delay)
                child.next_start = self.clock() + delay
                child.history.append(("spawn failed", str(exc), 0.0))
            self.log(f"{child.name} could not start ({type(exc).__name__}: {exc}); retrying in {delay:g} s")
            return
        with self._lock:
            self._took(child, proc)
        if child.restarts:
            self.log(f"{child.name} restarted (pid {proc.pid})")
        self._changed()

    def _took(self, child: Child, proc: subprocess.Popen) -> None:
        child.proc, child.started_at, child.next_start, child.last_pid = proc, self.clock(), None, proc.pid
        try:
            # start_new_session made it the leader of its own group before Popen returned (setsid runs
            # between fork and exec), so this cannot race the child.
            child.leads_group = os.getpgid(proc.pid) == proc.pid
        except ProcessLookupError:
            child.leads_group = False
        child.history.append(("started", proc.pid, 0.0))

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception as exc:  # a status file that cannot be written must not stop supervision
                self.log(f"could not record the children's pids: {type(exc).__name__}: {exc}")

    # -- stopping -----------------------------------------------------------------------------------
    def stop(
        self,
        order: list[str] | None = None,
        timeouts: dict[str, float] | None = None,
        force: threading.Event | None = None,
    ) -> dict[str, str]:
        """Stop every child, one after the other in ``order`` (default: the reverse of the start order;
        children not named go last, names of no child are skipped): the stop signal, a wait of
        ``timeouts[name]`` seconds (default the program's ``stop_timeout``; no wait once ``force`` is
        set), then SIGKILL to its process group. Returns, per child, ``"exited N"``, ``"killed after
        S s"`` or ``"not running"``."""
        self.stopping = True
        names = [n for n in (order or reversed(list(self.children))) if n in self.children]
        names += [n for n in reversed(list(self.children)) if n not in names]
        timeouts = timeouts or {}
        outcome = {}
        for name in names:
            child = self.children[name]
            with self._lock:
                proc = child.proc
            if proc is None or proc.poll() is not None:
                outcome[name] = "not running"
                _kill_group(child)
                child.proc = None
                continue
            began = time.monotonic()
            try:
                proc.send_signal(child.program.stop_signal)
            except ProcessLookupError:
                pass
            limit = timeouts.get(name, child.program.stop_timeout)
            while proc.poll() is None and time.monotonic() - began < limit and not (force and force.is_set()):
                time.sleep(0.05)
            if proc.poll() is None:
                _kill_group(child, proc)
                proc.wait()
                outcome[name] = f"killed after {time.monotonic() - began:.0f} s"
            else:
                outcome[name] = f"exited {proc.returncode}"
                _kill_group(child)
            child.proc = None
        self._changed()
        return outcome


def _kill_group(child: Child, proc: subprocess.Popen | None = None) -> None:
    """SIGKILL the process group the child leads: all of it (``proc`` still running), or what the dead
    child left behind. A child that does not lead its group is killed alone."""
    pid = proc.pid if proc is not None else child.last_pid
    if pid is None:
        return
    try:
        if child.leads_group:
            os.killpg(pid, signal.SIGKILL)
        elif proc is not None:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
