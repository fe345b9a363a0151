"""Entry point of the sandbox process that runs one robot program.

Started by :mod:`worker.sandbox.host` as ``python -I child.py READ_FD WRITE_FD`` with an empty
environment, an empty working directory and no other open files. The process holds numpy, math and
proxies of the robot API functions; each proxy sends its arguments to the host over a pipe and returns
the host's reply. The simulator, the database, files and the network live elsewhere.

Protocol (each message one frame of :mod:`codec`):
  host -> child  {"op": "start", "program", "api": [{"name", "doc"}], "limits": {...}}
  child -> host  {"op": "call", "name", "args", "kwargs", "line", "stack"}
  host -> child  {"ok": value} | {"error": {"type", "message", "status"}}
  child -> host  {"op": "done", "status", "error", "line", "stdout"}
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import builtins  # noqa: E402
import math  # noqa: E402
import resource  # noqa: E402
import traceback  # noqa: E402
import types  # noqa: E402

import numpy  # noqa: E402

import codec  # noqa: E402
import policy  # noqa: E402

STDOUT_LIMIT = 20_000


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


_PASSTHROUGH_ERRORS = {"TypeError": TypeError, "ValueError": ValueError, "IndexError": IndexError,
                       "KeyError": KeyError}


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
        text = "".join(self.parts)[-self.limit:]
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
        try:
            codec.write_frame(wfd, {"op": "call", "name": name, "args": list(args), "kwargs": kwargs,
                                    "line": line, "stack": stack})
        except codec.CodecError as exc:
            raise TypeError(f"{name}: {exc}") from None
        reply = codec.read_frame(rfd)
        if "error" in reply:
            err = reply["error"]
            if err.get("status") == "POLICY_VIOLATION":
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


def _namespace_of(module, denied=frozenset()):
    ns = types.SimpleNamespace()
    for key in dir(module):
        if key.startswith("_") or key in denied:
            continue
        try:
            setattr(ns, key, getattr(module, key))
        except Exception:  # lazily imported attributes that fail to load are simply absent
            pass
    return ns


def _library_import(name, globals=None, locals=None, fromlist=(), level=0):
    """numpy methods import lazily (``ndarray.mean`` pulls in ``numpy._core._methods``), from C, with
    the program's frame current, so those imports resolve ``__import__`` through the program's builtins.
    Serve numpy's own modules only. Programs cannot call this themselves: the policy check rejects
    the name ``__import__``, import statements and getattr of dunder names."""
    absolute = name if level == 0 else ""
    if level == 0 and (absolute == "numpy" or absolute.startswith("numpy.") or absolute == "math"):
        return builtins.__import__(name, globals, locals, fromlist, level)
    if level > 0 and globals and str(globals.get("__package__") or "").startswith("numpy"):
        return builtins.__import__(name, globals, locals, fromlist, level)
    raise ImportError(f"module {name!r} is not available in the sandbox")


def _build_builtins(tail):
    safe = {name: getattr(builtins, name) for name in policy.SAFE_BUILTIN_NAMES}
    safe["__import__"] = _library_import
    safe["getattr"] = _safe_getattr
    safe["hasattr"] = _safe_hasattr
    safe["__build_class__"] = builtins.__build_class__

    def _print(*args, sep=" ", end="\n", **_ignored):
        tail.write(sep.join(str(a) for a in args) + end)

    safe["print"] = _print
    safe["RobotAPIError"] = RobotAPIError
    return safe


def _apply_limits(limits):
    mem = int(limits.get("memory_mb", 1024)) * 1024 * 1024
    cpu = int(limits.get("cpu_seconds", 120))
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # No new files at all: writes to regular files fail, and no descriptor beyond those open now
    # (stdio and the two pipes) can be created, so open(), sockets and pipes all fail at the OS.
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    highest = max(int(fd) for fd in os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 16
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest, highest))
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    except (ValueError, OSError):
        pass


def _innermost_program_line(tb):
    line = 0
    for frame, lineno in traceback.walk_tb(tb):
        if frame.f_code.co_filename == policy.PROGRAM_FILENAME:
            line = lineno
    return line


def _source_line(source, line):
    lines = source.splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


def run(rfd, wfd):
    start = codec.read_frame(rfd)
    source = start["program"]
    tail = _Tail(STDOUT_LIMIT)

    def finish(status, error="", line=0):
        if line and error:
            error = f"{error} (line {line}: {_source_line(source, line)})"
        codec.write_frame(wfd, {"op": "done", "status": status, "error": error, "line": line,
                                "stdout": tail.value()})

    violations = policy.check_source(source)
    if violations:
        first = violations[0]
        status = "EXCEPTION" if policy.is_syntax_error(violations) else "POLICY_VIOLATION"
        finish(status, first.message, first.line)
        return

    namespace = {"__builtins__": _build_builtins(tail), "__name__": "__main__"}
    np_ns = _namespace_of(numpy, policy.NUMPY_DENIED)
    namespace.update(np=np_ns, numpy=np_ns, math=_namespace_of(math))
    for spec in start["api"]:
        namespace[spec["name"]] = _make_proxy(spec["name"], spec.get("doc", ""), rfd, wfd)

    code = compile(source, policy.PROGRAM_FILENAME, "exec")
    _apply_limits(start.get("limits", {}))
    try:
        exec(code, namespace)
    except PolicyViolationError as exc:
        finish("POLICY_VIOLATION", str(exc), _innermost_program_line(exc.__traceback__))
    except MemoryError as exc:
        limit = start.get("limits", {}).get("memory_mb", 1024)
        finish("MEMORY_LIMIT", f"MemoryError: the program exceeded the sandbox memory cap of {limit} MiB {exc}".strip(),
               _innermost_program_line(exc.__traceback__))
    except RecursionError as exc:
        finish("EXCEPTION", f"RecursionError: {exc}", _innermost_program_line(exc.__traceback__))
    except (codec.PeerClosed, codec.CodecError):
        raise
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included: the program ends here
        if _VIOLATIONS:  # the program swallowed a violation and then failed anyway
            finish("POLICY_VIOLATION", *_VIOLATIONS[0])
            return
        finish("EXCEPTION", f"{type(exc).__name__}: {exc}", _innermost_program_line(exc.__traceback__))
    else:
        if _VIOLATIONS:
            finish("POLICY_VIOLATION", *_VIOLATIONS[0])
        else:
            finish("OK")


def main():
    rfd, wfd = int(sys.argv[1]), int(sys.argv[2])
    try:
        run(rfd, wfd)
    except (codec.PeerClosed, BrokenPipeError):
        os._exit(3)


if __name__ == "__main__":
    main()
