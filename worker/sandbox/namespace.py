"""The numpy, math, time and scipy a robot program sees: curated, read-only namespaces instead of modules.

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

Two small namespaces are listed name by name instead: ``time`` (:data:`TIME_NAMES`: ``time``,
``perf_counter``, ``monotonic`` and ``sleep``; a sleep counts against the episode's wall-clock limit like
anything else) and ``scipy.spatial.transform`` (:data:`SCIPY_TRANSFORM_NAMES`: the classes ``Rotation``
and ``Slerp``, which published robot programs use for quaternions). Importing scipy costs about as much
as starting the sandbox, so ``scipy.spatial.transform`` is one of the :data:`LAZY_MODULES`: the child
imports scipy only when a program imports it (:func:`resolve_import`). ``Rotation`` instances keep
scipy modules in private attributes (``_xp``, ``_backend``); a program's own class may read ``self._x``,
and a program can pass a ``Rotation`` as ``self``, so serving the class also guards it
(:func:`_guard_library_class`): its private attributes answer scipy's code as before and refuse program
code (a frame compiled from ``<program>``), and it cannot be subclassed (a subclass could shadow them).

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
standard library and numpy only (scipy when a program first imports it), no package-relative imports.
"""

from __future__ import annotations

import builtins
import importlib
import math
import sys
import time
import types

import numpy
import numpy.fft
import numpy.linalg
import numpy.random

#: Modules a program may import, each served as a :class:`CuratedModule`.
IMPORTABLE_MODULES = ("numpy", "numpy.linalg", "numpy.random", "numpy.fft", "math", "time", "scipy.spatial.transform")

#: What the curated ``time`` holds (the real functions).
TIME_NAMES = ("time", "perf_counter", "monotonic", "sleep")
#: What the curated ``scipy.spatial.transform`` holds (the real classes, guarded).
SCIPY_TRANSFORM_NAMES = ("Rotation", "Slerp")
#: Modules built on a program's first import of them (module name -> the names served): importing
#: scipy takes about 0.2 s, as long as the rest of the sandbox's start.
LAZY_MODULES = {"scipy.spatial.transform": SCIPY_TRANSFORM_NAMES}
#: The file name of program code (``policy.PROGRAM_FILENAME``): how a guarded attribute tells a program's
#: frame from a library's.
PROGRAM_FILENAME = "<program>"

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


def build_modules(lazy: bool = False) -> dict[str, types.SimpleNamespace]:
    """Build the curated namespaces, keyed by module name (:data:`IMPORTABLE_MODULES`).

    The ``numpy`` namespace also carries ``linalg``, ``random`` and ``fft``: the curated sub-namespaces.
    With ``lazy`` (the sandbox child) the :data:`LAZY_MODULES` are left out: :func:`resolve_import` builds
    each on the program's first import of it and adds it to the dict. Each call builds new namespaces;
    build them once per program.
    """
    sources = {"numpy.linalg": numpy.linalg, "numpy.random": numpy.random, "numpy.fft": numpy.fft, "math": math}
    parts = {name: CuratedModule(name, _curated_attributes(module)) for name, module in sources.items()}
    top = _curated_attributes(numpy)
    top.update({attribute: parts[module_name] for attribute, module_name in NUMPY_SUBMODULES.items()})
    modules = {"numpy": CuratedModule("numpy", top), **parts}
    modules["time"] = CuratedModule("time", {name: getattr(time, name) for name in TIME_NAMES})
    if not lazy:
        for name in LAZY_MODULES:
            modules[name] = _build_lazy(name)
    return modules


class LibraryInternalsRefused(AttributeError):
    """What a guarded library attribute raises for program code (the child raises its policy violation)."""


#: The exception (class or factory taking the message) a guarded attribute raises for program code. The
#: sandbox child sets its ``PolicyViolationError``, so that such an attempt ends the episode as one.
REFUSAL = LibraryInternalsRefused


def _called_from_program(depth: int = 2) -> bool:
    """Whether the frame ``depth`` levels above this function's caller runs program code."""
    try:
        frame = sys._getframe(depth)
    except ValueError:
        return False
    return frame.f_code.co_filename == PROGRAM_FILENAME


def _refuse(owner: type, name: str):
    return REFUSAL(
        f"the private attribute '{name}' of {owner.__name__} is not available to robot programs; use its public methods"
    )


class _LibraryOnlyAttribute:
    """A data descriptor replacing one private instance attribute of a served library class.

    Reads and writes by the library's own code go to the instance's ``__dict__`` under a dunder key (which
    no program can name); from program code they raise :data:`REFUSAL`. A data descriptor wins over the
    instance ``__dict__``, so no store from anywhere bypasses it (and the class cannot be subclassed).
    """

    # Dunder names: a program cannot spell them, so the descriptor holds nothing a program can read.
    __slots__ = ("__attribute__", "__key__", "__owner__")

    def __init__(self, owner: type, name: str):
        self.__attribute__ = name
        self.__key__ = f"__sandbox{name}__"
        self.__owner__ = owner

    def __get__(self, obj, objtype=None):
        if _called_from_program():
            raise _refuse(self.__owner__, self.__attribute__)
        if obj is None:
            return self
        try:
            return obj.__dict__[self.__key__]
        except KeyError:
            name = self.__attribute__
            raise AttributeError(f"{type(obj).__name__!r} object has no attribute {name!r}", name=name) from None

    def __set__(self, obj, value):
        if _called_from_program():
            raise _refuse(self.__owner__, self.__attribute__)
        obj.__dict__[self.__key__] = value

    def __delete__(self, obj):
        if _called_from_program():
            raise _refuse(self.__owner__, self.__attribute__)
        obj.__dict__.pop(self.__key__, None)


class _LibraryOnlyClassAttribute:
    """A descriptor wrapping one private class attribute (a static method ...): refused to program code."""

    __slots__ = ("__wrapped_attribute__", "__attribute__", "__owner__")

    def __init__(self, owner: type, name: str, value):
        self.__wrapped_attribute__ = value
        self.__attribute__ = name
        self.__owner__ = owner

    def __get__(self, obj, objtype=None):
        if _called_from_program():
            raise _refuse(self.__owner__, self.__attribute__)
        value = self.__wrapped_attribute__
        return value.__get__(obj, objtype) if hasattr(value, "__get__") else value


def _guard_library_class(cls: type, instance_attributes: tuple[str, ...]) -> None:
    """Guard ``cls`` before it is served: its private class attributes and ``instance_attributes`` (the
    private attributes its ``__init__`` sets) refuse program code, and it cannot be subclassed. Idempotent.

    This changes the class for the whole process: the sandbox child, or a test. The worker's own scipy is
    untouched (the host never builds the curated scipy; see :func:`available_names`).
    """
    if vars(cls).get("__sandbox_guarded__"):
        return
    for name, value in list(vars(cls).items()):
        if name.startswith("_") and not name.startswith("__"):
            setattr(cls, name, _LibraryOnlyClassAttribute(cls, name, value))
    for name in instance_attributes:
        setattr(cls, name, _LibraryOnlyAttribute(cls, name))

    def refuse_subclass(subclass, **kwargs):
        raise TypeError(f"{cls.__name__} cannot be subclassed in robot programs")

    cls.__init_subclass__ = classmethod(refuse_subclass)
    cls.__sandbox_guarded__ = True


def _build_lazy(name: str) -> CuratedModule:
    """Import one of the :data:`LAZY_MODULES` for real and serve it (raises ImportError if it is missing)."""
    if name != "scipy.spatial.transform":  # pragma: no cover - LAZY_MODULES has one entry
        raise ImportError(f"no builder for {name!r}", name=name)
    try:
        transform = importlib.import_module("scipy.spatial.transform")
    except ImportError as exc:
        raise ImportError(f"scipy is not installed on this worker: {exc}", name=name) from None
    rotation, slerp = transform.Rotation, transform.Slerp
    # Rotation.__init__, _from_raw_quat and __setstate__ set these four; _xp and _backend are modules.
    _guard_library_class(rotation, ("_xp", "_backend", "_quat", "_single"))
    _guard_library_class(slerp, ())
    return CuratedModule(name, {"Rotation": rotation, "Slerp": slerp})


def _package_chain(modules, name: str) -> CuratedModule:
    """What ``import a.b.c`` binds to ``a``: the curated top-level namespace, or for a module served on its
    own (``scipy.spatial.transform``) a chain of namespaces holding only the path to it."""
    top = name.partition(".")[0]
    if top in modules:
        return modules[top]
    parts = name.split(".")
    node = modules[name]
    for depth in range(len(parts) - 1, 0, -1):
        node = CuratedModule(".".join(parts[:depth]), {parts[depth]: node})
    return node


def available_names(modules: dict[str, types.SimpleNamespace] | None = None) -> dict[str, frozenset[str]]:
    """Module name -> the attribute names a program finds there, for ``policy.check_source(source, available)``.

    ``modules`` defaults to a fresh lazy :func:`build_modules` (the host's case: it never imports scipy for
    this); the sandbox child passes the ones it built. :data:`LAZY_MODULES` not built yet are given by
    the names they will serve.
    """
    modules = build_modules(lazy=True) if modules is None else modules
    names = {name: frozenset(key for key in vars(ns) if not key.startswith("_")) for name, ns in modules.items()}
    for name, served in LAZY_MODULES.items():
        names.setdefault(name, frozenset(served))
    return names


def _is_library_import(name: str, level: int) -> bool:
    """Whether an import request is numpy loading one of its private modules (see :func:`resolve_import`)."""
    parts = name.split(".")
    return level == 0 and parts[0] == "numpy" and any(part.startswith("_") for part in parts[1:])


def resolve_import(modules, name, globals=None, locals=None, fromlist=(), level=0):
    """Python's ``__import__`` protocol over the curated ``modules`` (as returned by :func:`build_modules`).

    Program imports:

    - ``import numpy`` / ``import math`` / ``import time`` (with or without ``as``) return the curated
      namespace;
    - ``import numpy.linalg`` returns the curated ``numpy`` (which has ``.linalg``), as Python's own
      ``__import__`` returns the top-level package; ``import numpy.linalg as la`` then takes ``.linalg``;
    - ``from numpy.linalg import norm`` (a non-empty ``fromlist``) returns the curated ``numpy.linalg``, from
      which the interpreter takes each name (a missing one is an ``ImportError`` raised by the interpreter);
    - ``import scipy.spatial.transform`` returns a ``scipy`` namespace holding only ``spatial.transform``
      (``import scipy`` or ``import scipy.linalg`` alone is refused); ``from scipy.spatial.transform import
      Rotation`` returns the curated ``scipy.spatial.transform``. The first such import imports scipy
      (:data:`LAZY_MODULES`), inside the program's seccomp filter and limits.

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
    if level == 0 and name in IMPORTABLE_MODULES:
        if name not in modules:  # one of the LAZY_MODULES, imported for the first time
            modules[name] = _build_lazy(name)
        if fromlist:
            return modules[name]
        return _package_chain(modules, name)
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
