"""Host side of the sandbox: start the child process, serve its robot API calls, enforce the limits.

The host process owns the simulator; the child owns only the program. Every API call crosses a pipe
as plain data (see :mod:`worker.sandbox.codec`), so nothing the program does can hand it a reference
to a host object. The host enforces the per-episode wall-clock limit (killing the child's process
group), while the child enforces memory, CPU and file limits on itself with ``setrlimit``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from . import codec

log = logging.getLogger(__name__)

CHILD_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "child.py")

#: The child's whole environment: no API keys, broker URLs or paths leak into the program's process.
SANDBOX_ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
}

STDERR_TAIL = 4000


class Status:
    """Episode exit reasons produced by the sandbox."""

    OK = "OK"
    EXCEPTION = "EXCEPTION"
    POLICY_VIOLATION = "POLICY_VIOLATION"
    TIMEOUT = "TIMEOUT"
    MEMORY_LIMIT = "MEMORY_LIMIT"
    SANDBOX_CRASH = "SANDBOX_CRASH"


@dataclass
class SandboxLimits:
    """Per-episode limits. ``wall_seconds`` covers the program and the robot API calls it makes."""

    wall_seconds: float = 120.0
    memory_mb: int = 1024

    def child_limits(self) -> dict:
        return {"memory_mb": int(self.memory_mb), "cpu_seconds": int(self.wall_seconds) + 5}


@dataclass
class SandboxOutcome:
    status: str
    error: str = ""
    line: int = 0
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    api_calls: int = 0


class ApiError(Exception):
    """Raised by a dispatcher to fail one API call; the program sees an exception of ``type_name``.

    ``type_name`` is one of TypeError, ValueError, IndexError, KeyError or RobotAPIError. A
    ``status`` of POLICY_VIOLATION ends the episode with that status whatever the program does next.
    """

    def __init__(self, message: str, type_name: str = "RobotAPIError", status: str | None = None):
        super().__init__(message)
        self.type_name = type_name
        self.status = status


Dispatch = Callable[[str, list, dict, int, list], Any]


@dataclass
class _Session:
    proc: subprocess.Popen
    to_child: int
    from_child: int
    workdir: str
    stderr_file: Any
    calls: int = 0
    violation: str = ""
    violation_line: int = 0
    stdout: str = field(default="")


def _spawn() -> _Session:
    host_to_child_r, host_to_child_w = os.pipe()
    child_to_host_r, child_to_host_w = os.pipe()
    workdir = tempfile.mkdtemp(prefix="aspire-sandbox-")
    stderr_file = tempfile.TemporaryFile()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", CHILD_PATH, str(host_to_child_r), str(child_to_host_w)],
            pass_fds=(host_to_child_r, child_to_host_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr_file,
            cwd=workdir,
            env=SANDBOX_ENV,
            start_new_session=True,
        )
    finally:
        os.close(host_to_child_r)
        os.close(child_to_host_w)
    return _Session(proc, host_to_child_w, child_to_host_r, workdir, stderr_file)


def _kill(session: _Session) -> None:
    try:
        os.killpg(session.proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        session.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not fail
        log.error("sandbox process %s did not die after SIGKILL", session.proc.pid)


def _cleanup(session: _Session) -> str:
    for fd in (session.to_child, session.from_child):
        try:
            os.close(fd)
        except OSError:
            pass
    try:
        session.stderr_file.seek(0, os.SEEK_END)
        size = session.stderr_file.tell()
        session.stderr_file.seek(max(0, size - STDERR_TAIL))
        stderr = session.stderr_file.read().decode("utf-8", "replace")
    finally:
        session.stderr_file.close()
    try:
        os.rmdir(session.workdir)
    except OSError:
        # The child cannot create files (RLIMIT_FSIZE and RLIMIT_NOFILE); if something is there it
        # was not the program, so leave it for inspection rather than deleting a tree we did not make.
        log.warning("sandbox working directory %s was not empty", session.workdir)
    return stderr


def _reply_error(session: _Session, exc: Exception, name: str) -> None:
    if isinstance(exc, ApiError):
        payload = {"type": exc.type_name, "message": str(exc), "status": exc.status}
    elif isinstance(exc, (TypeError, ValueError, IndexError, KeyError)):
        payload = {"type": type(exc).__name__, "message": f"{name}: {exc}"}
    else:
        log.exception("robot API %s failed inside the host", name)
        payload = {"type": "RobotAPIError", "message": f"{name} failed: {type(exc).__name__}: {exc}"}
    codec.write_frame(session.to_child, {"error": payload})


def run_program(
    source: str,
    api: list[dict],
    dispatch: Dispatch,
    limits: SandboxLimits | None = None,
) -> SandboxOutcome:
    """Run ``source`` in a fresh sandbox process and serve its API calls with ``dispatch``.

    ``api`` lists ``{"name", "doc"}`` for every function the program may call; ``dispatch(name, args,
    kwargs, line, stack)`` executes one call on the host and returns a plain-data result (numpy arrays
    allowed) or raises :class:`ApiError` / TypeError / ValueError to fail it. Never raises for anything
    the program does: every ending becomes a :class:`SandboxOutcome`.
    """
    limits = limits or SandboxLimits()
    allowed = {spec["name"] for spec in api}
    started = time.monotonic()
    session = _spawn()
    outcome: SandboxOutcome | None = None
    try:
        deadline = time.monotonic() + limits.wall_seconds
        codec.write_frame(
            session.to_child,
            {"op": "start", "program": source, "api": api, "limits": limits.child_limits()},
        )
        while outcome is None:
            try:
                msg = codec.read_frame(session.from_child, deadline)
            except codec.FrameTimeout:
                outcome = SandboxOutcome(
                    Status.TIMEOUT,
                    f"the episode exceeded its wall-clock limit of {limits.wall_seconds:g} s; "
                    "the program was stopped",
                )
                break
            except codec.PeerClosed:
                outcome = _died(session, limits)
                break
            except codec.CodecError as exc:
                outcome = SandboxOutcome(Status.SANDBOX_CRASH, f"malformed message from the sandbox: {exc}")
                break
            op = msg.get("op") if isinstance(msg, dict) else None
            if op == "done":
                status = msg.get("status", Status.EXCEPTION)
                error, line = msg.get("error", ""), int(msg.get("line") or 0)
                if session.violation:
                    status, error, line = Status.POLICY_VIOLATION, session.violation, session.violation_line
                outcome = SandboxOutcome(status, error, line, stdout=msg.get("stdout", ""))
                break
            if op != "call":
                outcome = SandboxOutcome(Status.SANDBOX_CRASH, f"unexpected message from the sandbox: {op!r}")
                break
            name = msg.get("name")
            line = int(msg.get("line") or 0)
            if name not in allowed:
                session.violation = f"'{name}' is not a robot API function"
                session.violation_line = line
                codec.write_frame(session.to_child, {"error": {"type": "RobotAPIError", "message":
                                  session.violation, "status": Status.POLICY_VIOLATION}})
                continue
            session.calls += 1
            try:
                result = dispatch(name, list(msg.get("args") or []), dict(msg.get("kwargs") or {}), line,
                                  list(msg.get("stack") or []))
            except Exception as exc:  # every failure of one call goes back to the program
                if isinstance(exc, ApiError) and exc.status == Status.POLICY_VIOLATION and not session.violation:
                    session.violation, session.violation_line = str(exc), line
                _reply_error(session, exc, name)
            else:
                if time.monotonic() > deadline:
                    outcome = SandboxOutcome(
                        Status.TIMEOUT,
                        f"the episode exceeded its wall-clock limit of {limits.wall_seconds:g} s "
                        f"during {name}; the program was stopped",
                        line,
                    )
                    break
                try:
                    codec.write_frame(session.to_child, {"ok": result})
                except codec.CodecError as exc:
                    _reply_error(session, ApiError(f"{name} returned a value that cannot be sent: {exc}"), name)
    except codec.PeerClosed:
        outcome = _died(session, limits)
    finally:
        if session.proc.poll() is None:
            _kill(session)
        stderr = _cleanup(session)
    outcome.stderr = stderr
    outcome.duration_s = time.monotonic() - started
    outcome.api_calls = session.calls
    return outcome


def _died(session: _Session, limits: SandboxLimits) -> SandboxOutcome:
    try:
        code = session.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        _kill(session)
        code = session.proc.returncode
    if code is not None and code < 0:
        sig = -code
        if sig == signal.SIGXCPU:
            return SandboxOutcome(Status.TIMEOUT, f"the program used more than {limits.child_limits()['cpu_seconds']} s of CPU")
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return SandboxOutcome(Status.SANDBOX_CRASH, f"the sandbox process died with signal {name}")
    return SandboxOutcome(Status.SANDBOX_CRASH, f"the sandbox process exited unexpectedly with code {code}")
