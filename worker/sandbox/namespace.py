"""The numpy and math a robot program sees: curated, read-only namespaces instead of module objects.

A module object is a door to everything it imported: ``numpy.random.bit_generator`` leads through
``re`` and ``enum`` to the real builtins, ``numpy.polynomial.polyutils.np`` is numpy unfiltered, and so on.
The sandbox child therefore hands programs :class:`CuratedModule` namespaces that hold only

- functions: Python functions, builtin functions and bound methods (``np.random.normal`` is a method of
  numpy's global ``RandomState``), ufuncs, numpy's array-function dispatchers and Cython functions;
- types: ``ndarray``, ``dtype``, ``float64``, ``random.Generator``, ``linalg.LinAlgError`` ...;
- plain constants: ``None``, bools, ints, floats and numpy scalars (``pi``, ``inf``, ``newaxis``, ``True_``);
- numpy's index helpers ``r_``, ``c_``, ``s_``, ``index_exp``, ``mgrid`` and ``ogrid`` (small objects
  that build arrays from slice syntax);
- for ``numpy``, the curated ``linalg``, ``random`` and ``fft`` namespaces.

Everything else is left out because of its kind: modules, dicts, tuples and other instances. On top of
that, :data:`EXCLUDED_NAMES` removes the functions and classes that reach files, pickles, raw memory or
build tooling (``load``, ``save``, ``fromfile``, ``memmap``, ``show_config`` ...), and names starting with
``_`` never appear. What is served still has attributes of its own; those that lead back to a module's
globals (a Cython function's ``func_globals``, a frame's ``f_globals`` ...) are in the policy's
``DENIED_ATTRIBUTES``, which the static check and the child's ``getattr`` refuse, and
``worker/tests/test_sandbox_namespace.py`` walks the rest to check that no module is reachable.

:func:`resolve_import` serves the program's ``import`` statements from the same namespaces (see its
docstring for the imports numpy makes on its own behalf). The static check in ``policy`` rejects any
other import before a program runs; this module is what a program gets at run time either way.

Imported by the sandbox child as a top-level module, and by the host as ``worker.sandbox.namespace``:
standard library and numpy only, no package-relative imports.
"""

from __future__ import annotations

import builtins
import math
import types

import numpy
import numpy.fft
import numpy.linalg
import numpy.random

#: Modules a program may import, each served as a :class:`CuratedModule`.
IMPORTABLE_MODULES = ("numpy", "numpy.linalg", "numpy.random", "numpy.fft", "math")

#: Sub-namespaces of ``numpy`` (attribute name -> module name), attached to the curated ``numpy``.
NUMPY_SUBMODULES = {"linalg": "numpy.linalg", "random": "numpy.random", "fft": "numpy.fft"}

#: Functions and classes of the right kind that still reach files, pickles, raw memory or build tooling.
EXCLUDED_NAMES = frozenset(
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
        "show_config",
        "show_runtime",
        "get_include",
        "info",
    }
)

#: Kinds of callables served: Python and builtin functions, bound methods, ufuncs, array-function
#: dispatchers (``numpy.mean``) and Cython functions (``numpy.random.default_rng``).
FUNCTION_KINDS = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    numpy.ufunc,
    type(numpy.mean),
    type(numpy.random.default_rng),
)

#: Kinds of plain constants served (``numpy.generic`` covers numpy scalars such as ``True_``).
CONSTANT_KINDS = (type(None), bool, int, float, numpy.generic)

#: numpy's index helpers: instances that turn slice syntax into arrays (``np.r_[0:3, 7]``).
INDEX_HELPER_NAMES = frozenset({"r_", "c_", "s_", "index_exp", "mgrid", "ogrid"})


class CuratedModule(types.SimpleNamespace):
    """A read-only namespace standing in for a module.

    It deliberately has no ``__name__``: when ``from M import x`` finds no ``x`` on ``M``, the interpreter
    falls back to ``sys.modules[M.__name__ + ".x"]``, which would hand ``from numpy.random import
    bit_generator`` the real module. The module's name is kept under ``__sandbox_name__`` instead, for
    messages and ``repr``.
    """

    __slots__ = ()

    def __init__(self, name: str, attributes: dict[str, object]):
        super().__init__(__sandbox_name__=name, **attributes)

    def __setattr__(self, name, value):
        raise AttributeError(f"module {self.__sandbox_name__!r} is read-only in the robot sandbox")

    def __delattr__(self, name):
        raise AttributeError(f"module {self.__sandbox_name__!r} is read-only in the robot sandbox")

    def __getattr__(self, name):  # only called for names the namespace does not hold
        raise AttributeError(f"module {self.__sandbox_name__!r} has no attribute {name!r} available to robot programs")

    def __repr__(self):
        return f"<module {self.__sandbox_name__!r} (robot sandbox)>"


def _is_served(name: str, value: object) -> bool:
    """Whether ``module.name`` belongs in a curated namespace (by kind, then the exclusions)."""
    if name.startswith("_") or name in EXCLUDED_NAMES:
        return False
    if isinstance(value, (FUNCTION_KINDS, type, CONSTANT_KINDS)):
        return True
    return name in INDEX_HELPER_NAMES and type(value).__module__.startswith("numpy.")


def _curated_attributes(module: types.ModuleType) -> dict[str, object]:
    """The served attributes of ``module``, read from its ``__dict__``: ``dir()`` would make numpy import
    its lazily loaded submodules (``testing``, ``f2py`` ...) only for them to be left out."""
    return {name: value for name, value in vars(module).items() if _is_served(name, value)}


def build_modules() -> dict[str, types.SimpleNamespace]:
    """Build the curated namespaces, keyed by module name (:data:`IMPORTABLE_MODULES`).

    The ``numpy`` namespace also carries ``linalg``, ``random`` and ``fft``: the curated sub-namespaces.
    Each call builds new namespaces; build them once per program.
    """
    sources = {"numpy.linalg": numpy.linalg, "numpy.random": numpy.random, "numpy.fft": numpy.fft, "math": math}
    parts = {name: CuratedModule(name, _curated_attributes(module)) for name, module in sources.items()}
    top = _curated_attributes(numpy)
    top.update({attribute: parts[module_name] for attribute, module_name in NUMPY_SUBMODULES.items()})
    return {"numpy": CuratedModule("numpy", top), **parts}


def available_names(modules: dict[str, types.SimpleNamespace] | None = None) -> dict[str, frozenset[str]]:
    """Module name -> the attribute names a program finds there, for ``policy.check_source(source, available)``.

    ``modules`` defaults to a fresh :func:`build_modules`; the sandbox child passes the ones it built.
    """
    modules = build_modules() if modules is None else modules
    return {name: frozenset(key for key in vars(ns) if not key.startswith("_")) for name, ns in modules.items()}


def _is_library_import(name: str, level: int) -> bool:
    """Whether an import request is numpy loading one of its private modules (see :func:`resolve_import`)."""
    parts = name.split(".")
    return level == 0 and parts[0] == "numpy" and any(part.startswith("_") for part in parts[1:])


def resolve_import(modules, name, globals=None, locals=None, fromlist=(), level=0):
    """Python's ``__import__`` protocol over the curated ``modules`` (as returned by :func:`build_modules`).

    Program imports:

    - ``import numpy`` / ``import math`` (with or without ``as``) return the curated namespace;
    - ``import numpy.linalg`` returns the curated ``numpy`` (which has ``.linalg``), as Python's own
      ``__import__`` returns the top-level package; ``import numpy.linalg as la`` then takes ``.linalg``;
    - ``from numpy.linalg import norm`` (a non-empty ``fromlist``) returns the curated ``numpy.linalg``, from
      which the interpreter takes each name (a missing one is an ``ImportError`` raised by the interpreter).

    Library imports: numpy's C code imports some of its private modules lazily (``ndarray.mean`` loads
    ``numpy._core._methods``, printing loads ``numpy._core.arrayprint``). It does so through
    ``PyImport_Import``, which looks ``__import__`` up in the builtins of the current frame: the program's
    frame, so the request arrives here. An absolute name under ``numpy`` with a component starting with
    ``_`` is therefore passed to the real ``builtins.__import__``. ``PyImport_Import`` always imports
    absolutely, calls ``__import__`` only for its effect and then reads the module from ``sys.modules``;
    so this function returns the curated ``numpy`` rather than the module it loaded, and a program that
    spells such an import itself (the static check refuses it first) still receives no real module.
    (numpy's Python code imports through its own module's builtins and never reaches this function.)

    Anything else raises ``ImportError`` naming the modules a program may import.
    """
    if level == 0 and name in modules:
        if fromlist:
            return modules[name]
        return modules[name.partition(".")[0]]
    if _is_library_import(name, level):
        builtins.__import__(name, globals, locals, fromlist, level)
        return modules["numpy"]
    shown = "." * level + name
    raise ImportError(
        f"module {shown!r} is not available to robot programs; they may import only " + ", ".join(IMPORTABLE_MODULES),
        name=shown,
    )


def make_import(modules):
    """An ``__import__`` for the program's builtins: :func:`resolve_import` bound to ``modules``."""

    def __import__(name, globals=None, locals=None, fromlist=(), level=0):
        return resolve_import(modules, name, globals, locals, fromlist, level)

    return __import__
