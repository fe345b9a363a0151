"""Entry point of the sandbox process that runs one robot program.

Started by :mod:`worker.sandbox.host` as ``python -I -S -B child.py READ_FD WRITE_FD LIB_DIR``, inside the
OS boundary of :mod:`worker.sandbox.containment` (under bubblewrap this file is ``/sandbox/child.py`` and
``LIB_DIR`` holds only numpy, msgpack and scipy). The process holds numpy, math and proxies of the robot
API functions (and scipy once a program imports ``scipy.spatial.transform``); each proxy sends its
arguments to the host over a pipe and returns the host's reply. The simulator, the database, files and
the network live elsewhere.

Before it compiles the program the child installs the host's seccomp filter on itself (no process
creation, no exec, no sockets, no file writes), so from the program's first line the OS refuses those
whatever the program does in Python. The curated namespace (:mod:`namespace`) and the guarded builtins
below give authors clear errors; they are not the boundary.

Protocol (each message one frame of :mod:`codec`):
  host -> child  {"op": "start", "program", "api": [{"name", "doc"}], "limits": {...}, "seccomp": bytes,
                  "python_policy": bool, "globals": {name: plain data}, "task_facts": {"task_language"} | None}
  child -> host  {"op": "call", "name", "args", "kwargs", "line", "stack"}
  host -> child  {"ok": value} | {"error": {"type", "message", "status"}}
  child -> host  {"op": "done", "status", "error", "line", "stdout"}

``globals`` are placed in the program's global scope as they are (the host validated their names: no
builtins, API or predefined names). With ``task_facts`` the program also gets ``env``, an
:class:`_TaskEnv`: ``env.task_language`` and ``env.handle.task_language`` are the task's instruction,
every other attribute raises AttributeError(:data:`SIMULATOR_UNAVAILABLE`).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if not os.path.exists(os.path.join(sys.path[0], "status.py")):  # a plain process: worker/robot holds it
    sys.path.append(os.path.join(os.path.dirname(sys.path[0]), "robot"))
if len(sys.argv) > 3:
    sys.path.insert(1, sys.argv[3])

import builtins  # noqa: E402
import math  # noqa: E402
import traceback  # noqa: E402

import codec  # noqa: E402
import namespace  # noqa: E402
import numpy  # noqa: E402
import policy  # noqa: E402
from status import EpisodeStatus  # noqa: E402

STDOUT_LIMIT = 20_000
#: What the host accepts (worker.sandbox.protocol); sending within it keeps an honest program's
#: oversized call an ordinary TypeError instead of a protocol error.
MAX_CALL_ARGS = 64
MAX_ERROR_CHARS = 2_000
MAX_STACK_FRAMES = 32
MAX_FRAME_NAME_CHARS = 100


def _capped_stack(stack):
    if len(stack) > MAX_STACK_FRAMES:
        stack = stack[:4] + stack[-(MAX_STACK_FRAMES - 4) :]
    return [[fn[:MAX_FRAME_NAME_CHARS], line] for fn, line in stack]


class PolicyViolationError(BaseException):
    """Raised at run time when a program reaches for something the policy forbids.

    A BaseException so that ``except Exception`` in a program does not swallow it; a bare ``except``
    still can, so the first violation is also remembered in ``_VIOLATIONS`` and decides the status.
    """

    def __init__(self, message):
        super().__init__(message)
        frames = _program_stack()
        _VIOLATIONS.append((message, frames[-1][1] if frames else 0))


_VIOLATIONS = []


class RobotAPIError(Exception):
    """Raised in the program when a robot API call fails; the trace holds the details."""


#: API errors the program gets as that type (the host's ``PASSTHROUGH_ERRORS``); others are RobotAPIError.
_PASSTHROUGH_ERRORS = {
    "TypeError": TypeError,
    "ValueError": ValueError,
    "IndexError": IndexError,
    "KeyError": KeyError,
    "AssertionError": AssertionError,
    "RuntimeError": RuntimeError,
}

SIMULATOR_UNAVAILABLE = (
    "the simulator is not available to robot programs (camera-only API): env offers only env.handle.task_language"
)


class _TaskHandle:
    """``env.handle`` of a robot program: the task's language instruction, and nothing else.

    Published programs read ``env.handle.task_language``. The instance holds only that string, in a slot
    whose dunder name no program can spell; the class has no public attributes.
    """

    __slots__ = ("__task_language__",)

    def __init__(self, task_language):
        object.__setattr__(self, "__task_language__", str(task_language))

    def __getattr__(self, name):  # called for every name the instance lacks, i.e. all but dunders
        if name == "task_language":
            return object.__getattribute__(self, "__task_language__")
        raise AttributeError(SIMULATOR_UNAVAILABLE)

    def __setattr__(self, name, value):
        raise AttributeError(SIMULATOR_UNAVAILABLE)

    def __delattr__(self, name):
        raise AttributeError(SIMULATOR_UNAVAILABLE)

    def __repr__(self):
        language = object.__getattribute__(self, "__task_language__")
        return f"<env.handle (camera-only robot API): task_language={language!r}>"


class _TaskEnv(_TaskHandle):
    """``env`` of a robot program: ``env.task_language`` and ``env.handle`` (a fresh :class:`_TaskHandle`)."""

    __slots__ = ()

    def __getattr__(self, name):
        if name == "handle":
            return _TaskHandle(object.__getattribute__(self, "__task_language__"))
        return _TaskHandle.__getattr__(self, name)

    def __repr__(self):
        language = object.__getattribute__(self, "__task_language__")
        return f"<env (camera-only robot API): task_language={language!r}>"


class _Tail:
    """Bounded stdout buffer: a program printing in a loop cannot exhaust memory."""

    def __init__(self, limit):
        self.limit = limit
        self.parts = []
        self.size = 0
        self.dropped = 0

    def write(self, text):
        self.parts.append(text)
        self.size += len(text)
        while self.size > self.limit and len(self.parts) > 1:
            removed = self.parts.pop(0)
            self.size -= len(removed)
            self.dropped += len(removed)
        return len(text)

    def value(self):
        text = "".join(self.parts)[-self.limit :]
        return ("[... earlier output dropped]\n" + text) if self.dropped else text


def _program_stack():
    """(function, line) pairs of program frames, outermost first, for the trace's call tree."""
    frames = []
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename == policy.PROGRAM_FILENAME:
            frames.append([frame.f_code.co_name, frame.f_lineno])
        frame = frame.f_back
    frames.reverse()
    return frames


def _make_proxy(name, doc, rfd, wfd):
    def proxy(*args, **kwargs):
        stack = _program_stack()
        line = stack[-1][1] if stack else 0
        if len(args) > MAX_CALL_ARGS or len(kwargs) > MAX_CALL_ARGS:
            raise TypeError(f"{name}: at most {MAX_CALL_ARGS} positional and {MAX_CALL_ARGS} keyword arguments")
        for key in kwargs:
            if not (key.isascii() and key.isidentifier() and len(key) <= 64):
                raise TypeError(f"{name}: keyword argument names must be identifiers of at most 64 characters")
        try:
            codec.write_frame(
                wfd,
                {
                    "op": "call",
                    "name": name,
                    "args": list(args),
                    "kwargs": kwargs,
                    "line": line,
                    "stack": _capped_stack(stack),
                },
                limits=codec.CHILD_TO_HOST,
            )
        except codec.CodecError as exc:
            raise TypeError(f"{name}: {exc}") from None
        reply = codec.read_frame(rfd)
        if "error" in reply:
            err = reply["error"]
            if err.get("status") == EpisodeStatus.POLICY_VIOLATION:
                raise PolicyViolationError(err.get("message", ""))
            cls = _PASSTHROUGH_ERRORS.get(err.get("type"), RobotAPIError)
            raise cls(err.get("message", "robot API call failed"))
        return reply.get("ok")

    proxy.__name__ = proxy.__qualname__ = name
    proxy.__doc__ = doc
    return proxy


def _safe_getattr(obj, name, *default):
    if not isinstance(name, str) or name.startswith("_") or name in policy.DENIED_ATTRIBUTES:
        raise PolicyViolationError(f"getattr of {name!r} is not allowed")
    return getattr(obj, name, *default)


def _safe_hasattr(obj, name):
    if not isinstance(name, str) or name.startswith("_") or name in policy.DENIED_ATTRIBUTES:
        raise PolicyViolationError(f"hasattr of {name!r} is not allowed")
    return hasattr(obj, name)


def _printer(tail):
    def _print(*args, sep=" ", end="\n", **_ignored):
        tail.write(sep.join(str(a) for a in args) + end)

    return _print


def _build_builtins(tail, modules):
    safe = {name: getattr(builtins, name) for name in policy.SAFE_BUILTIN_NAMES}

    def _import(name, globals=None, locals=None, fromlist=(), level=0):
        return namespace.resolve_import(modules, name, globals, locals, fromlist, level)

    safe["__import__"] = _import
    safe["getattr"] = _safe_getattr
    safe["hasattr"] = _safe_hasattr
    safe["__build_class__"] = builtins.__build_class__
    safe["print"] = _printer(tail)
    safe["RobotAPIError"] = RobotAPIError
    return safe


#: prctl(2) and seccomp(2) constants from <linux/prctl.h> and <linux/seccomp.h>.
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


def _install_seccomp(bpf):
    """Install the host's classic-BPF filter (raw ``struct sock_filter`` array) on this process.

    Filters only ever add restrictions and cannot be removed, so the program inherits it for good.
    Raises OSError if the kernel refuses.
    """
    import ctypes

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(bytes(bpf), len(bpf))
    prog = SockFprog(len(bpf) // 8, ctypes.addressof(buf))
    for args in ((PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0)):
        if libc.prctl(*args) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"prctl{args[:2]} failed: {os.strerror(err)}")


def _innermost_program_line(tb):
    line = 0
    for frame, lineno in traceback.walk_tb(tb):
        if frame.f_code.co_filename == policy.PROGRAM_FILENAME:
            line = lineno
    return line


def _source_line(source, line):
    lines = source.splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


def _scope(start, tail, rfd, wfd):
    """The globals the program runs with: the robot API proxies, the curated numpy and math, the host's
    ``globals`` and, with ``task_facts``, ``env``.

    With ``python_policy`` false (the containment tests only, never a run setting) the program gets the
    real builtins and the real numpy module, as an attacker who escaped the curated namespace would.
    """
    if start.get("python_policy", True):
        # scipy (scipy.spatial.transform) is imported on the program's first import of it: that import
        # costs about as much as the rest of the start-up, and most programs that never use it pay nothing.
        modules = namespace.build_modules(lazy=True)
        namespace.REFUSAL = PolicyViolationError  # a program reaching into Rotation's privates is a violation
        scope = {"__builtins__": _build_builtins(tail, modules), "__name__": "__main__"}
        scope.update(np=modules["numpy"], numpy=modules["numpy"], math=modules["math"])
    else:
        real = dict(vars(builtins), print=_printer(tail), RobotAPIError=RobotAPIError)
        scope = {"__builtins__": real, "__name__": "__main__", "np": numpy, "numpy": numpy, "math": math}
    scope.update(start.get("globals") or {})
    facts = start.get("task_facts")
    if facts is not None:
        scope["env"] = _TaskEnv(facts.get("task_language", ""))
    for spec in start["api"]:
        scope[spec["name"]] = _make_proxy(spec["name"], spec.get("doc", ""), rfd, wfd)
    return scope


def run(rfd, wfd):
    start = codec.read_frame(rfd)
    if start.get("seccomp"):
        _install_seccomp(start["seccomp"])
    source = start["program"]
    tail = _Tail(STDOUT_LIMIT)

    def finish(status, error="", line=0):
        if line and error:
            error = f"{error} (line {line}: {_source_line(source, line)})"
        codec.write_frame(
            wfd,
            {"op": "done", "status": status, "error": error[:MAX_ERROR_CHARS], "line": line, "stdout": tail.value()},
            limits=codec.CHILD_TO_HOST,
        )

    try:
        code = compile(source, policy.PROGRAM_FILENAME, "exec")
    except (SyntaxError, ValueError) as exc:  # the host checked already unless the policy is off
        finish(EpisodeStatus.EXCEPTION, f"{type(exc).__name__}: {exc}", getattr(exc, "lineno", 0) or 0)
        return
    scope = _scope(start, tail, rfd, wfd)
    try:
        exec(code, scope)
    except PolicyViolationError as exc:
        finish(EpisodeStatus.POLICY_VIOLATION, str(exc), _innermost_program_line(exc.__traceback__))
    except MemoryError as exc:
        limit = start.get("limits", {}).get("memory_mb", 1024)
        finish(
            EpisodeStatus.MEMORY_LIMIT,
            f"MemoryError: the program exceeded the sandbox memory cap of {limit} MiB {exc}".strip(),
            _innermost_program_line(exc.__traceback__),
        )
    except RecursionError as exc:
        finish(EpisodeStatus.EXCEPTION, f"RecursionError: {exc}", _innermost_program_line(exc.__traceback__))
    except (codec.PeerClosed, codec.CodecError):
        raise
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included: the program ends here
        if _VIOLATIONS:  # the program swallowed a violation and then failed anyway
            finish(EpisodeStatus.POLICY_VIOLATION, *_VIOLATIONS[0])
            return
        finish(EpisodeStatus.EXCEPTION, f"{type(exc).__name__}: {exc}", _innermost_program_line(exc.__traceback__))
    else:
        if _VIOLATIONS:
            finish(EpisodeStatus.POLICY_VIOLATION, *_VIOLATIONS[0])
        else:
            finish(EpisodeStatus.OK)


def main():
    rfd, wfd = int(sys.argv[1]), int(sys.argv[2])
    try:
        run(rfd, wfd)
    except (codec.PeerClosed, BrokenPipeError):
        os._exit(3)
    except OSError as exc:  # the seccomp filter could not be installed: never run the program without it
        sys.stderr.write(f"sandbox: {exc}\n")
        os._exit(4)


if __name__ == "__main__":
    main()
