"""What a robot program may and may not do, checked before it runs and enforced while it runs.

A program is plain Python that calls the robot API. It receives the API functions, ``np``/``numpy`` and
``math`` predefined: curated, read-only namespaces of numpy's and math's functions, types and constants,
without module objects and without numpy's file, pickle and raw-memory entry points (see the sandbox's
``namespace`` module). It may also import them, numpy's ``linalg``, ``random`` and ``fft``, ``time``
(:data:`TIME_NAMES` only) and ``scipy.spatial.transform`` (:data:`SCIPY_TRANSFORM_NAMES`: ``Rotation`` and
``Slerp`` only), with the import statements listed at :data:`IMPORTABLE_MODULES`; any other import
(``import scipy``, ``from scipy import io``, ``import scipy.linalg`` ...) is refused.

The static check below rejects other imports, private and dunder attributes, frame, generator and function
introspection attributes, and the builtins that reach files, the interpreter or other objects' namespaces.
It exists to give a program's author an early, clear message naming the line. It is not the boundary: the
sandbox child serves the curated namespaces and restricted builtins, and what holds the line is the OS
boundary around that process (its own process, resource limits, no files, no network), so a trick the AST
check misses still finds no simulator, no files and no network there.

This module is imported by the sandbox child as a top-level module and by the host: standard library only.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass

PROGRAM_FILENAME = "<program>"

#: Modules a program may import, as ``import M``, ``import M as X`` or ``from M import a, b as c`` (never
#: ``*``). The sandbox child serves each as a curated namespace; ``np``, ``numpy`` and ``math`` are also
#: predefined. ``import scipy.spatial.transform`` binds ``scipy`` to a namespace holding only that path.
IMPORTABLE_MODULES = ("numpy", "numpy.linalg", "numpy.random", "numpy.fft", "math", "time", "scipy.spatial.transform")

#: The names the small curated modules hold, whoever checks (``namespace`` serves exactly these).
TIME_NAMES = ("time", "perf_counter", "monotonic", "sleep")
SCIPY_TRANSFORM_NAMES = ("Rotation", "Slerp")
#: Module -> names, checked in ``from M import x`` even without the sandbox's ``available`` names.
LISTED_NAMES = {"time": frozenset(TIME_NAMES), "scipy.spatial.transform": frozenset(SCIPY_TRANSFORM_NAMES)}

#: The end of every refused import's message.
IMPORT_RULE = (
    "robot programs may import only numpy, numpy.linalg, numpy.random, numpy.fft, math, "
    f"time ({', '.join(TIME_NAMES)}) and scipy.spatial.transform ({' and '.join(SCIPY_TRANSFORM_NAMES)}), "
    "e.g. 'from scipy.spatial.transform import Rotation'; np, numpy and math are also predefined"
)

#: Builtins a program may use (the sandbox child builds its ``__builtins__`` from this list).
SAFE_BUILTIN_NAMES = frozenset(
    """abs all any ascii bin bool bytes callable chr complex dict divmod enumerate filter float format
    frozenset hash hex int isinstance issubclass iter len list map max min next object oct ord pow print
    range repr reversed round set slice sorted str sum super tuple type zip property staticmethod
    classmethod id
    Exception ArithmeticError AssertionError AttributeError FloatingPointError IndexError KeyError
    LookupError NameError NotImplementedError OverflowError RuntimeError StopIteration TypeError
    ValueError ZeroDivisionError""".split()
)

#: Names whose only uses are reaching files, the interpreter or other namespaces.
DENIED_NAMES = {
    "open": "file access is not available to robot programs",
    "eval": "eval is not allowed",
    "exec": "exec is not allowed",
    "compile": "compile is not allowed",
    "__import__": "__import__ is not allowed; use an import statement",
    "globals": "globals() is not allowed",
    "locals": "locals() is not allowed",
    "vars": "vars() is not allowed",
    "dir": "dir() is not allowed",
    "input": "there is no standard input",
    "breakpoint": "breakpoint() is not allowed",
    "help": "help() is not available",
    "exit": "exit() is not available; return from the program or raise an exception",
    "quit": "quit() is not available; return from the program or raise an exception",
    "setattr": "setattr() is not allowed",
    "delattr": "delattr() is not allowed",
    "memoryview": "memoryview() is not allowed",
    "__builtins__": "the builtins namespace is not reachable",
}

#: Receivers whose single-underscore attributes a program may use (its own classes' state).
OWN_OBJECT_NAMES = frozenset({"self", "cls"})

#: Dunder names a program may read.
ALLOWED_DUNDER_NAMES = frozenset({"__name__"})

#: Attribute names that expose frames, code objects, raw memory or files even without underscores.
DENIED_ATTRIBUTES = frozenset(
    {
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "gi_running",
        "gi_suspended",
        "cr_frame",
        "cr_code",
        "cr_await",
        "cr_origin",
        "ag_frame",
        "ag_code",
        "ag_await",
        "f_back",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_code",
        "f_trace",
        "tb_frame",
        "tb_next",
        "mro",
        # Cython functions (numpy.random's) expose their module's globals, closure and code under these names.
        "func_globals",
        "func_closure",
        "func_code",
        "func_dict",
        "ctypes",
        "tofile",
        "dump",
        "fromfile",
        "memmap",
        "load",
        "loads",
        "save",
        "savez",
        "savez_compressed",
        "savetxt",
        "loadtxt",
        "genfromtxt",
        "fromregex",
        "DataSource",
        "ctypeslib",
        "f2py",
        "distutils",
        "testing",
        "lib",
        "system",
        "popen",
        "environ",
        "modules",
        "builtins",
        "os",
        "sys",
        "subprocess",
        "shutil",
        "socket",
        "importlib",
        "pathlib",
        "io",
        "pickle",
        "marshal",
    }
)

#: numpy top-level names hidden from programs (file and pickle I/O, raw memory, build tooling).
NUMPY_DENIED = frozenset(
    {
        "load",
        "save",
        "savez",
        "savez_compressed",
        "savetxt",
        "loadtxt",
        "genfromtxt",
        "fromfile",
        "fromregex",
        "memmap",
        "DataSource",
        "ctypeslib",
        "lib",
        "f2py",
        "distutils",
        "testing",
        "core",
        "rec",
        "ma",
        "char",
        "strings",
        "matrixlib",
        "typing",
        "show_config",
        "show_runtime",
        "get_include",
        "info",
        "test",
        "version",
        "compat",
        "os",
        "sys",
        "exceptions",
        "dtypes",
    }
)


@dataclass(frozen=True)
class Violation:
    """One policy violation: 1-based ``line``, 0-based ``col`` and a message for the program's author."""

    line: int
    col: int
    message: str
    source: str = ""

    def describe(self) -> str:
        where = f"line {self.line}"
        if self.source:
            where += f": {self.source.strip()}"
        return f"{self.message} ({where})"


class _Checker(ast.NodeVisitor):
    def __init__(self, lines: list[str], available: Mapping[str, frozenset[str]] | None):
        self.lines = lines
        self.available = available
        self.violations: list[Violation] = []

    def _flag(self, node: ast.AST, message: str) -> None:
        line = getattr(node, "lineno", 0)
        src = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        self.violations.append(Violation(line, getattr(node, "col_offset", 0), message, src))

    def visit_Import(self, node):
        for alias in node.names:
            if alias.name not in IMPORTABLE_MODULES:
                self._flag(alias, f"import of {alias.name} is not allowed: {IMPORT_RULE}")
            self._check_name(alias, alias.asname or alias.name.partition(".")[0], binds=True)

    def visit_ImportFrom(self, node):
        module = "." * node.level + (node.module or "")
        if module not in IMPORTABLE_MODULES:
            self._flag(node, f"import from {module} is not allowed: {IMPORT_RULE}")
            return
        for alias in node.names:
            name = alias.name
            if name == "*":
                self._flag(alias, f"'from {module} import *' is not allowed: import the names you use")
                continue
            if name.startswith("_"):
                self._flag(alias, f"importing the private name '{name}' from {module} is not allowed")
            elif name in DENIED_ATTRIBUTES or (module == "numpy" and name in NUMPY_DENIED):
                self._flag(alias, f"'{name}' from {module} is not available to robot programs")
            elif module in LISTED_NAMES and name not in LISTED_NAMES[module]:
                self._flag(alias, f"{module} has no name '{name}' available to robot programs: {IMPORT_RULE}")
            elif self.available is not None and name not in self.available.get(module, frozenset()):
                self._flag(alias, f"{module} has no name '{name}' available to robot programs")
            self._check_name(alias, alias.asname or name, binds=True)

    def visit_Attribute(self, node):
        attr = node.attr
        if attr.startswith("__"):
            self._flag(node, f"access to the dunder or name-mangled attribute '.{attr}' is not allowed")
        elif attr.startswith("_") and not (isinstance(node.value, ast.Name) and node.value.id in OWN_OBJECT_NAMES):
            # self._cache in a program's own class is fine; np.random._pickle and friends are not.
            self._flag(node, f"access to the private attribute '.{attr}' is only allowed on self or cls")
        elif attr in DENIED_ATTRIBUTES:
            self._flag(node, f"access to the attribute '.{attr}' is not allowed in robot programs")
        self.generic_visit(node)

    def visit_Name(self, node):
        self._check_name(node, node.id, binds=isinstance(node.ctx, (ast.Store, ast.Del)))

    def _check_name(self, node: ast.AST, name: str, binds: bool) -> None:
        """Check a name that ``node`` reads or, with ``binds``, binds (an assignment or an import's alias)."""
        if name in OWN_OBJECT_NAMES and binds:
            self._flag(node, f"rebinding '{name}' is not allowed; use it only as a method parameter")
        elif name in DENIED_NAMES:
            self._flag(node, f"'{name}': {DENIED_NAMES[name]}")
        elif name.startswith("__") and name not in ALLOWED_DUNDER_NAMES:
            self._flag(node, f"the dunder name '{name}' is not allowed")


def check_source(source: str, available: Mapping[str, frozenset[str]] | None = None) -> list[Violation]:
    """Return the policy violations of a program, in source order; an empty list means it may run.

    ``available`` maps each importable module to the names a program finds there (the sandbox's
    ``namespace.available_names()``, computed where numpy can be imported); when given, ``from numpy import
    x`` of a name not in ``available["numpy"]`` is a violation. The modules of :data:`LISTED_NAMES`
    (``time``, ``scipy.spatial.transform``) are checked against their lists either way. A syntax error is
    returned as a single violation so callers have one path for "cannot run".
    """
    lines = source.splitlines()
    try:
        tree = ast.parse(source, filename=PROGRAM_FILENAME)
    except SyntaxError as exc:
        line = exc.lineno or 0
        src = lines[line - 1] if 0 < line <= len(lines) else ""
        return [Violation(line, (exc.offset or 1) - 1, f"SyntaxError: {exc.msg}", src)]
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        return [Violation(0, 0, f"the program cannot be parsed: {exc}")]
    checker = _Checker(lines, available)
    checker.visit(tree)
    return sorted(checker.violations, key=lambda v: (v.line, v.col))


def is_syntax_error(violations: list[Violation]) -> bool:
    """Whether ``violations`` is the single violation :func:`check_source` returns for a syntax error."""
    return len(violations) == 1 and violations[0].message.startswith("SyntaxError")
