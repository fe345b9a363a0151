"""Host side of the sandbox: start the contained child, serve its robot API calls, decide the outcome.

The host owns the simulator; the child owns only the program. The child runs inside the OS boundary of
:mod:`worker.sandbox.containment` (bubblewrap namespaces, seccomp, limits it cannot lift), and the host
treats every byte it sends as hostile:

* frames are size-capped and decoded with msgpack's length limits and an element budget
  (``codec.CHILD_TO_HOST``), then validated against the protocol schema (:mod:`worker.sandbox.protocol`);
  anything else ends the episode ``SANDBOX_PROTOCOL_ERROR`` with a clear message;
* the wall-clock deadline is checked after every decode and every dispatch;
* stdout, error text and the recorded stack are capped here, whatever the child claims;
* the outcome's status is the host's: a child's ``done`` only says the program ended (``OK``) or how it
  failed; it never overrides a violation, a protocol error or a timeout the host saw, and success is
  judged on the simulator by the engine.

The Python-level policy (:mod:`worker.sandbox.policy`) runs here before any process starts, so an
author gets a clear early ``POLICY_VIOLATION`` naming the line; it is not what holds the line.
"""

from __future__ import annotations

import atexit
import builtins
import keyword
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from worker.robot import status as st

from . import codec, containment, namespace, policy, protocol, seccomp

log = logging.getLogger(__name__)

CHILD_PATH = os.path.join(containment.SANDBOX_DIR, "child.py")
#: Kept for callers that start their own child: the environment it gets (nothing of the worker's).
SANDBOX_ENV = containment.CHILD_ENV
STDERR_TAIL = 4000
#: The child's stderr is a host temp file; RLIMIT_FSIZE caps what the child can write to it.
STDERR_FILE_BYTES = 1024 * 1024


class Status:
    """Episode exit reasons produced by the sandbox (values of :mod:`worker.robot.status`)."""

    OK = st.OK
    EXCEPTION = st.EXCEPTION
    POLICY_VIOLATION = st.POLICY_VIOLATION
    TIMEOUT = st.TIMEOUT
    MEMORY_LIMIT = st.MEMORY_LIMIT
    SANDBOX_CRASH = st.SANDBOX_CRASH
    SANDBOX_PROTOCOL_ERROR = st.SANDBOX_PROTOCOL_ERROR
    SANDBOX_UNAVAILABLE = st.SANDBOX_UNAVAILABLE
    TRACE_LIMIT = st.TRACE_LIMIT


#: Statuses after which the simulator state says nothing about the program (success is not judged).
NOT_JUDGED = frozenset(
    {Status.POLICY_VIOLATION, Status.SANDBOX_CRASH, Status.SANDBOX_PROTOCOL_ERROR, Status.SANDBOX_UNAVAILABLE}
)


@dataclass
class SandboxLimits:
    """Per-episode limits. ``wall_seconds`` covers the program and the robot API calls it makes;
    ``memory_mb`` is the child's address-space cap; ``max_calls`` bounds the robot API calls of one
    episode (each becomes a trace row)."""

    wall_seconds: float = 120.0
    memory_mb: int = 1024
    max_calls: int = 20_000

    def cpu_seconds(self) -> int:
        return int(self.wall_seconds) + 5

    def child_limits(self) -> dict:
        return {"memory_mb": int(self.memory_mb), "cpu_seconds": self.cpu_seconds()}


@dataclass
class SandboxOutcome:
    """How one program run ended. ``sandbox`` is the containment label recorded with the episode
    (``"bwrap+seccomp"`` or ``"process (not contained)"``, empty when nothing ran)."""

    status: str
    error: str = ""
    line: int = 0
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    api_calls: int = 0
    sandbox: str = ""


#: Exceptions a dispatch may raise for the program to catch as that type (the child's
#: ``_PASSTHROUGH_ERRORS``): published robot APIs raise AssertionError when a grasp planner finds no
#: candidates and RuntimeError when IK fails, and programs catch them. A subclass arrives as the listed
#: type it derives from (first match in this order), except :data:`HOST_FAILURES`.
PASSTHROUGH_ERRORS = (TypeError, ValueError, IndexError, KeyError, AssertionError, RuntimeError)
#: RuntimeError subclasses that mean the host itself failed: logged, and the program gets RobotAPIError.
HOST_FAILURES = (RecursionError, NotImplementedError)


class ApiError(Exception):
    """Raised by a dispatcher to fail one API call; the program sees an exception of ``type_name``.

    ``type_name`` is one of TypeError, ValueError, IndexError, KeyError, AssertionError, RuntimeError or
    RobotAPIError (a dispatch may also raise the first six directly; see :data:`PASSTHROUGH_ERRORS`). A
    ``status`` of POLICY_VIOLATION ends the episode with that status whatever the program does next; with
    ``terminal=True`` the episode ends at once with ``status`` (e.g. TRACE_LIMIT).
    """

    def __init__(
        self, message: str, type_name: str = "RobotAPIError", status: str | None = None, terminal: bool = False
    ):
        super().__init__(message)
        self.type_name = type_name
        self.status = status
        self.terminal = terminal


Dispatch = Callable[[str, list, dict, int, list], Any]


@dataclass
class _Session:
    proc: subprocess.Popen
    to_child: int
    from_child: int
    workdir: str
    stderr_file: Any
    label: str
    cgroup: containment.CgroupLimits | None = None
    calls: int = 0
    violation: str = ""
    violation_line: int = 0
    stdout: str = field(default="")


def _spawn(limits: SandboxLimits | None = None, box: containment.Containment | None = None) -> _Session:
    """Start the child under ``box`` (default: this worker's containment). Raises SandboxUnavailable."""
    limits = limits or SandboxLimits()
    box = box or containment.current()
    host_to_child_r, host_to_child_w = os.pipe()
    child_to_host_r, child_to_host_w = os.pipe()
    fds = [host_to_child_r, child_to_host_w]
    launch = containment.prlimit_argv(limits.memory_mb, limits.cpu_seconds(), STDERR_FILE_BYTES)
    seccomp_r = -1
    cgroup = None
    workdir = "/"
    if box.mode == containment.BWRAP:
        seccomp_r, seccomp_w = os.pipe()
        os.write(seccomp_w, seccomp.bpf(False))  # a few KiB: fits the pipe buffer
        os.close(seccomp_w)
        fds.append(seccomp_r)
        if box.cgroup:
            cgroup = containment.CgroupLimits(box.cgroup, limits.memory_mb)
            cgroup.create()
            launch = cgroup.launcher() + launch
        argv = (
            launch
            + containment.bwrap_argv(seccomp_r)
            + [
                os.path.realpath(sys.executable),
                "-I",
                "-S",
                "-B",
                f"{containment.INSIDE_DIR}/child.py",
                str(host_to_child_r),
                str(child_to_host_w),
                containment.INSIDE_LIB,
            ]
        )
    else:
        workdir = tempfile.mkdtemp(prefix="aspire-sandbox-")
        import numpy  # the site-packages holding numpy and msgpack go on the child's sys.path

        site = os.path.dirname(os.path.dirname(os.path.realpath(numpy.__file__)))
        argv = launch + [
            os.path.realpath(sys.executable),
            "-I",
            "-S",
            "-B",
            CHILD_PATH,
            str(host_to_child_r),
            str(child_to_host_w),
            site,
        ]
    stderr_file = tempfile.TemporaryFile()
    try:
        proc = subprocess.Popen(
            argv,
            pass_fds=tuple(fds),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr_file,
            cwd=workdir,
            env=containment.CHILD_ENV,
            start_new_session=True,
        )
    except BaseException:
        stderr_file.close()
        for fd in (host_to_child_w, child_to_host_r):
            os.close(fd)
        if cgroup:
            cgroup.remove()
        raise
    finally:
        for fd in fds:
            os.close(fd)
    return _Session(proc, host_to_child_w, child_to_host_r, workdir, stderr_file, box.label, cgroup)


#: This thread's spare: a child started ahead of its program (see :func:`keep_spare`).
_SPARES = threading.local()


@dataclass
class _Spare:
    key: tuple
    owner_pid: int
    session: _Session


def _spare_key(limits: SandboxLimits, box: containment.Containment) -> tuple:
    # everything _spawn reads: the containment and the limits the launcher applies
    return (box.mode, box.label, box.cgroup, int(limits.memory_mb), limits.cpu_seconds())


def keep_spare(enabled: bool = True) -> None:
    """Start each program's sandbox process ahead of time on this thread.

    With ``enabled``, every :func:`run_program` on the calling thread starts the next program's child as
    soon as its own program has ended, so that the child's start-up (interpreter, numpy, seccomp and
    namespace set-up: ``bench/results/sandbox_startup.json``) overlaps the host's work between episodes
    (success check, trace flush, simulator reset) instead of adding to the next episode. The spare is an
    ordinary fresh child that has received nothing yet: it gets its program, limits and seccomp filter in
    the start frame like any other, runs exactly one program, and is used only by the same thread of the
    same process with the same containment and limits (otherwise it is killed and a child is started as
    before). A spare whose process has died is replaced silently. ``keep_spare(False)`` stops this and
    kills the thread's spare. Celery worker processes turn it on (runs.tasks), as does
    :func:`worker.engine.warm_up`.
    """
    _SPARES.enabled = bool(enabled)
    if not enabled:
        _drop_spare()


def _drop_spare() -> None:
    spare = getattr(_SPARES, "spare", None)
    _SPARES.spare = None
    if spare is None:
        return
    if spare.owner_pid != os.getpid():  # inherited through fork: the parent's process, not ours to kill
        for fd in (spare.session.to_child, spare.session.from_child):  # only this process's copies
            try:
                os.close(fd)
            except OSError:
                pass
        spare.session.stderr_file.close()
        return
    _kill(spare.session)
    _cleanup(spare.session)


def _take_spare(limits: SandboxLimits, box: containment.Containment) -> _Session | None:
    """This thread's spare if it fits ``limits`` and ``box`` and is alive; else None (the spare is dropped)."""
    spare = getattr(_SPARES, "spare", None)
    if spare is None:
        return None
    if spare.owner_pid == os.getpid() and spare.key == _spare_key(limits, box) and spare.session.proc.poll() is None:
        _SPARES.spare = None
        return spare.session
    _drop_spare()
    return None


def _start_spare(limits: SandboxLimits, box: containment.Containment) -> None:
    if not getattr(_SPARES, "enabled", False) or getattr(_SPARES, "spare", None) is not None:
        return
    try:
        session = _spawn(limits, box)
    except Exception:  # the next run_program starts its own child and reports what fails
        log.warning("could not start a spare sandbox process", exc_info=True)
        return
    _SPARES.spare = _Spare(_spare_key(limits, box), os.getpid(), session)


@atexit.register
def _drop_spare_at_exit() -> None:  # pragma: no cover - exercised by interpreter exit
    try:
        _drop_spare()
    except Exception:
        pass


def _kill(session: _Session) -> None:
    # The launcher's process group: prlimit and bubblewrap exec in place, so this is bwrap itself;
    # when it dies the sandbox's pid namespace goes with it, and every process inside.
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
        stderr = session.stderr_file.read(STDERR_TAIL).decode("utf-8", "replace")
    finally:
        session.stderr_file.close()
    if session.cgroup:
        session.cgroup.remove()
    if session.workdir != "/":
        try:
            os.rmdir(session.workdir)
        except OSError:
            log.warning("sandbox working directory %s was not empty", session.workdir)
    return stderr


def _passthrough_type(exc: Exception) -> str:
    """The name of the :data:`PASSTHROUGH_ERRORS` type the program sees ``exc`` as, or ``""``."""
    if isinstance(exc, HOST_FAILURES):
        return ""
    return next((cls.__name__ for cls in PASSTHROUGH_ERRORS if isinstance(exc, cls)), "")


def _reply_error(session: _Session, exc: Exception, name: str) -> None:
    passthrough = "" if isinstance(exc, ApiError) else _passthrough_type(exc)
    if isinstance(exc, ApiError):
        payload = {"type": exc.type_name, "message": str(exc), "status": exc.status}
    elif passthrough:
        payload = {"type": passthrough, "message": f"{name}: {exc}"}
    else:
        log.exception("robot API %s failed inside the host", name)
        payload = {"type": "RobotAPIError", "message": f"{name} failed: {type(exc).__name__}: {exc}"}
    codec.write_frame(session.to_child, {"error": payload})


def _policy_outcome(source: str) -> SandboxOutcome | None:
    violations = policy.check_source(source, namespace.available_names())
    if not violations:
        return None
    first = violations[0]
    status = Status.EXCEPTION if policy.is_syntax_error(violations) else Status.POLICY_VIOLATION
    error = f"{first.message} (line {first.line}: {first.source.strip()})" if first.line else first.message
    return SandboxOutcome(status, error, first.line)


def _timeout(limits: SandboxLimits, during: str = "", line: int = 0) -> SandboxOutcome:
    where = f" during {during}" if during else ""
    return SandboxOutcome(
        Status.TIMEOUT,
        f"the episode exceeded its wall-clock limit of {limits.wall_seconds:g} s{where}; the program was stopped",
        line,
    )


#: Keys of ``task_facts`` (see :func:`run_program`) and the longest text each may hold.
TASK_FACTS = {"task_language": 10_000}
#: Names a program global may not take (besides builtins, keywords, API names and names starting with
#: ``_``): what the child predefines, and ``self``/``cls``, which the policy keeps for methods.
PREDEFINED_NAMES = frozenset({"np", "numpy", "math", "env", "RobotAPIError", "print"}) | policy.OWN_OBJECT_NAMES


def _check_program_inputs(api: list[dict], program_globals: dict | None, task_facts: dict | None) -> dict:
    """Validate :func:`run_program`'s ``program_globals`` and ``task_facts``; return the start-frame fields.

    Raises ValueError naming the offending global or fact.
    """
    program_globals = {} if program_globals is None else program_globals
    if not isinstance(program_globals, dict):
        raise ValueError(f"program_globals must be a dict, got {type(program_globals).__name__}")
    api_names = {spec["name"] for spec in api}
    for name in program_globals:
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"program global {name!r} is not a Python identifier")
        if name.startswith("_"):
            raise ValueError(f"program global {name!r} may not start with '_'")
        if name in PREDEFINED_NAMES or hasattr(builtins, name) or name in policy.DENIED_NAMES:
            raise ValueError(f"program global {name!r} would shadow a builtin or a predefined name")
        if name in api_names:
            raise ValueError(f"program global {name!r} would shadow the robot API function of that name")
    facts = None
    if task_facts is not None:
        if not isinstance(task_facts, dict):
            raise ValueError(f"task_facts must be a dict, got {type(task_facts).__name__}")
        unknown = sorted(str(key) for key in task_facts if key not in TASK_FACTS)
        if unknown:
            raise ValueError(f"unknown task facts {', '.join(unknown)}; known: {', '.join(TASK_FACTS)}")
        facts = {}
        for key, limit in TASK_FACTS.items():
            value = task_facts.get(key, "")
            if not isinstance(value, str) or len(value) > limit:
                raise ValueError(f"task fact {key!r} must be a string of at most {limit} characters")
            facts[key] = value
    fields = {"globals": program_globals, "task_facts": facts}
    try:
        codec.encode(fields, codec.HOST_TO_CHILD)
    except codec.CodecError as exc:
        raise ValueError(f"program_globals cannot be sent to the sandbox: {exc}") from None
    return fields


def run_program(
    source: str,
    api: list[dict],
    dispatch: Dispatch,
    limits: SandboxLimits | None = None,
    *,
    python_policy: bool = True,
    program_globals: dict | None = None,
    task_facts: dict | None = None,
) -> SandboxOutcome:
    """Run ``source`` in a fresh contained process and serve its API calls with ``dispatch``.

    ``api`` lists ``{"name", "doc"}`` for every function the program may call; ``dispatch(name, args,
    kwargs, line, stack)`` executes one call on the host and returns a plain-data result (numpy arrays
    allowed) or raises :class:`ApiError` to fail it. It may also raise TypeError, ValueError, IndexError,
    KeyError, AssertionError or RuntimeError: the program gets that type with the message prefixed by the
    function's name (:data:`PASSTHROUGH_ERRORS`); anything else is logged as a host failure and reaches
    the program as RobotAPIError. Never raises for anything the program does: every ending becomes a
    :class:`SandboxOutcome`.

    ``program_globals`` maps names to plain data that the program finds in its global scope, as the
    published runner's ``obs``, ``INPUTS``, ``RESULT`` and ``APIS`` (dicts, lists, numpy arrays of numeric
    dtypes, numbers, strings, None; tuples and sets arrive as lists). They travel in the start frame,
    within ``codec.HOST_TO_CHILD``'s limits (a 64 MiB frame). Names must be identifiers, not keywords, not
    starting with ``_``, and must not shadow a builtin, a predefined name (``np``, ``numpy``, ``math``,
    ``env``, ``RobotAPIError``, ``self``, ``cls``) or an API function.

    ``task_facts`` (``{"task_language": str}``) gives the program an ``env`` stand-in: ``env.task_language``
    and ``env.handle.task_language`` are the task's language instruction, and every other attribute of
    ``env`` or ``env.handle`` raises AttributeError("the simulator is not available to robot programs
    (camera-only API): env offers only env.handle.task_language"). Without it there is no ``env``.

    Raises ValueError, before any process starts, for ``program_globals`` or ``task_facts`` that break
    these rules or cannot be sent.

    ``python_policy=False`` is for the containment tests only: the program gets the real builtins and
    numpy, with no AST check, so the tests can prove the OS boundary holds alone. No run setting,
    form or API field reaches it.
    """
    limits = limits or SandboxLimits()
    started = time.monotonic()
    inputs = _check_program_inputs(api, program_globals, task_facts)
    if python_policy:
        early = _policy_outcome(source)
        if early is not None:
            early.duration_s = time.monotonic() - started
            return early
    try:
        box = containment.current()
        session = _take_spare(limits, box) or _spawn(limits, box)
    except (containment.SandboxUnavailable, seccomp.SeccompUnavailable) as exc:
        log.error("refusing to run a program: %s", exc)
        return SandboxOutcome(
            Status.SANDBOX_UNAVAILABLE,
            f"the sandbox cannot start on this worker: {exc}. "
            f"Set {containment.MODE_ENV}=process to run programs without OS containment.",
            duration_s=time.monotonic() - started,
        )
    try:
        program_filter = seccomp.bpf(True)
    except seccomp.SeccompUnavailable:
        program_filter = b""  # process mode on a machine without libseccomp: already marked not contained
    outcome: SandboxOutcome | None = None
    try:
        deadline = time.monotonic() + limits.wall_seconds
        codec.write_frame(
            session.to_child,
            {
                "op": "start",
                "program": source,
                "api": api,
                "limits": limits.child_limits(),
                "seccomp": program_filter,
                "python_policy": bool(python_policy),
                **inputs,
            },
        )
        outcome = _serve(session, dispatch, limits, deadline, {spec["name"] for spec in api})
    except codec.PeerClosed:
        outcome = _died(session, limits)
    finally:
        if session.proc.poll() is None:
            _kill(session)
        stderr = _cleanup(session)
        _start_spare(limits, box)  # the next program's child starts while the host finishes this episode
    outcome.stderr = stderr
    outcome.duration_s = time.monotonic() - started
    outcome.api_calls = session.calls
    outcome.sandbox = session.label
    return outcome


def _serve(
    session: _Session, dispatch: Dispatch, limits: SandboxLimits, deadline: float, allowed: set[str]
) -> SandboxOutcome:
    """The request loop: one validated frame at a time until the program ends or the host ends it."""
    while True:
        try:
            msg = codec.read_frame(session.from_child, deadline, limits=codec.CHILD_TO_HOST)
            frame = protocol.parse_child_message(msg)
        except codec.FrameTimeout:
            return _timeout(limits)
        except codec.PeerClosed:
            return _died(session, limits)
        except (codec.CodecError, protocol.ProtocolError) as exc:
            return SandboxOutcome(
                Status.SANDBOX_PROTOCOL_ERROR,
                f"the sandbox sent a message the host refuses: {exc}; the program was stopped",
            )
        if time.monotonic() > deadline:
            return _timeout(limits)
        if isinstance(frame, protocol.DoneFrame):
            if session.violation:
                return SandboxOutcome(
                    Status.POLICY_VIOLATION, session.violation, session.violation_line, stdout=frame.stdout
                )
            return SandboxOutcome(frame.status, frame.error, frame.line, stdout=frame.stdout)
        if frame.name not in allowed:
            if not session.violation:
                session.violation = f"'{frame.name}' is not a robot API function"
                session.violation_line = frame.line
            codec.write_frame(
                session.to_child,
                {"error": {"type": "RobotAPIError", "message": session.violation, "status": Status.POLICY_VIOLATION}},
            )
            continue
        session.calls += 1
        if session.calls > limits.max_calls:
            return SandboxOutcome(
                Status.TRACE_LIMIT,
                f"the program made more than {limits.max_calls} robot API calls in one episode; it was stopped",
                frame.line,
            )
        try:
            result = dispatch(frame.name, frame.args, frame.kwargs, frame.line, frame.stack)
        except Exception as exc:  # every failure of one call goes back to the program
            if isinstance(exc, ApiError) and exc.terminal:
                return SandboxOutcome(exc.status or Status.SANDBOX_CRASH, str(exc), frame.line)
            if isinstance(exc, ApiError) and exc.status == Status.POLICY_VIOLATION and not session.violation:
                session.violation, session.violation_line = str(exc), frame.line
            if time.monotonic() > deadline:
                return _timeout(limits, frame.name, frame.line)
            _reply_error(session, exc, frame.name)
            continue
        if time.monotonic() > deadline:
            return _timeout(limits, frame.name, frame.line)
        try:
            codec.write_frame(session.to_child, {"ok": result})
        except codec.CodecError as exc:
            _reply_error(session, ApiError(f"{frame.name} returned a value that cannot be sent: {exc}"), frame.name)


def _died(session: _Session, limits: SandboxLimits) -> SandboxOutcome:
    try:
        code = session.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        _kill(session)
        code = session.proc.returncode
    sig = -code if code is not None and code < 0 else 0
    if session.label == containment.BWRAP_LABEL and code is not None and code > 128:
        sig = code - 128  # bubblewrap exits with 128 + the signal that killed the sandboxed process
    if sig:
        if sig == signal.SIGXCPU:
            return SandboxOutcome(Status.TIMEOUT, f"the program used more than {limits.cpu_seconds()} s of CPU")
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return SandboxOutcome(Status.SANDBOX_CRASH, f"the sandbox process died with signal {name}")
    return SandboxOutcome(Status.SANDBOX_CRASH, f"the sandbox process exited unexpectedly with code {code}")
