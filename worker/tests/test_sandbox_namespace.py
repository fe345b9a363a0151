"""The curated numpy, math, time and scipy namespaces of robot programs, and their imports
(worker.sandbox.namespace)."""

import builtins
import re
import sys
import time
import types

import numpy
import pytest
from scipy.spatial.transform import Rotation, Slerp

from worker.sandbox import namespace, policy

MODULES = namespace.build_modules()
NP = MODULES["numpy"]


def run(source, modules=MODULES):
    """Execute ``source`` as the sandbox child does: restricted builtins with the curated ``__import__``,
    and ``np``/``numpy``/``math`` predefined. Returns the program's namespace."""
    safe = {name: getattr(builtins, name) for name in policy.SAFE_BUILTIN_NAMES}
    safe["__import__"] = namespace.make_import(modules)
    safe["__build_class__"] = builtins.__build_class__
    program = {
        "__builtins__": safe,
        "__name__": "__main__",
        "np": modules["numpy"],
        "numpy": modules["numpy"],
        "math": modules["math"],
    }
    exec(compile(source, policy.PROGRAM_FILENAME, "exec"), program)
    return program


# --- what the namespaces hold -------------------------------------------------------------------------


def test_it_serves_exactly_the_importable_modules():
    assert set(MODULES) == set(namespace.IMPORTABLE_MODULES) == set(policy.IMPORTABLE_MODULES)
    assert all(isinstance(ns, types.SimpleNamespace) for ns in MODULES.values())
    assert NP.linalg is MODULES["numpy.linalg"]
    assert NP.random is MODULES["numpy.random"]
    assert NP.fft is MODULES["numpy.fft"]


def test_the_listed_modules_hold_exactly_their_lists_and_agree_with_the_policy():
    assert namespace.TIME_NAMES == policy.TIME_NAMES and namespace.SCIPY_TRANSFORM_NAMES == policy.SCIPY_TRANSFORM_NAMES
    assert namespace.PROGRAM_FILENAME == policy.PROGRAM_FILENAME
    assert namespace.available_names(MODULES)["time"] == frozenset(policy.TIME_NAMES)
    assert namespace.available_names(MODULES)["scipy.spatial.transform"] == frozenset({"Rotation", "Slerp"})
    clock = MODULES["time"]
    assert clock.sleep is time.sleep and clock.perf_counter is time.perf_counter and clock.monotonic is time.monotonic
    transform = MODULES["scipy.spatial.transform"]
    assert transform.Rotation is Rotation and transform.Slerp is Slerp
    for name in ("strftime", "localtime", "RigidTransform", "RotationSpline", "rotation"):
        assert not hasattr(clock, name) and not hasattr(transform, name)


def test_the_lazy_build_leaves_scipy_to_the_first_import():
    modules = namespace.build_modules(lazy=True)
    assert set(modules) == set(namespace.IMPORTABLE_MODULES) - set(namespace.LAZY_MODULES)
    # the host checks from-imports against the names scipy will serve, without importing it for that
    assert namespace.available_names(modules) == namespace.available_names(MODULES)
    served = namespace.resolve_import(modules, "scipy.spatial.transform", {}, None, ("Rotation",), 0)
    assert modules["scipy.spatial.transform"] is served and served.Rotation is Rotation


def test_namespaces_hold_only_functions_types_and_constants():
    allowed = namespace.FUNCTION_KINDS + (type,) + namespace.CONSTANT_KINDS
    for module_name, ns in MODULES.items():
        for name, value in vars(ns).items():
            if name == "__sandbox_name__":
                assert value == module_name
                continue
            assert not name.startswith("_"), (module_name, name)
            assert not isinstance(value, types.ModuleType), (module_name, name)
            assert (
                isinstance(value, allowed)
                or name in namespace.INDEX_HELPER_NAMES
                or (module_name == "numpy" and name in namespace.NUMPY_SUBMODULES)
            ), (module_name, name, type(value))


def test_the_everyday_names_are_there():
    assert NP.pi == numpy.pi and NP.newaxis is None and NP.inf == numpy.inf
    assert NP.ndarray is numpy.ndarray and NP.float64 is numpy.float64 and NP.dtype is numpy.dtype
    assert NP.random.Generator is numpy.random.Generator
    assert NP.linalg.norm is numpy.linalg.norm and NP.fft.rfft is numpy.fft.rfft
    assert MODULES["math"].sqrt is sys.modules["math"].sqrt and MODULES["math"].tau == sys.modules["math"].tau


@pytest.mark.parametrize(
    "path",
    [
        "random.bit_generator",
        "random.mtrand",
        "polynomial",
        "lib",
        "load",
        "save",
        "savez",
        "loadtxt",
        "fromfile",
        "memmap",
        "ctypeslib",
        "testing",
        "f2py",
        "show_config",
        "get_include",
        "info",
        "test",
        "emath",
        "ma",
        "core",
        "char",
        "rec",
        "strings",
        "dtypes",
        "exceptions",
        "typing",
        "version",
        "matrixlib",
        "sctypeDict",
        "linalg.test",
    ],
)
def test_exploit_paths_and_file_entry_points_are_absent(path):
    obj = NP
    *parents, last = path.split(".")
    for name in parents:
        obj = getattr(obj, name)
    assert not hasattr(obj, last)


def test_names_the_policy_denies_are_absent():
    available = namespace.available_names()
    assert set(available) == set(MODULES)
    assert available["numpy"].isdisjoint(policy.NUMPY_DENIED)
    for names in available.values():
        assert names.isdisjoint(policy.DENIED_ATTRIBUTES)
        assert not any(name.startswith("_") for name in names)
    assert {"pi", "zeros", "linalg", "random", "fft"} <= available["numpy"]
    assert {"norm", "inv"} <= available["numpy.linalg"]


def test_namespaces_are_read_only():
    with pytest.raises(AttributeError, match="read-only"):
        NP.zeros = None
    with pytest.raises(AttributeError, match="read-only"):
        del NP.linalg.norm
    with pytest.raises(AttributeError, match="no attribute 'load' available"):
        NP.load  # noqa: B018
    assert repr(NP) == "<module 'numpy' (robot sandbox)>"


def test_namespaces_have_no_module_name_for_from_imports_to_fall_back_on():
    """``from M import x`` with no ``M.x`` looks for ``sys.modules[M.__name__ + '.x']``: no ``__name__``, no
    real ``numpy.random.bit_generator``."""
    assert all(not hasattr(ns, "__name__") for ns in MODULES.values())


def _children(obj):
    """(name, value) of every attribute a program can name: not private, not denied by the policy."""
    names = set()
    try:
        names.update(dir(obj))
    except Exception:
        pass
    if isinstance(obj, types.MethodType):  # a bound method forwards unknown attributes to its function
        names.update(dir(obj.__func__))
    for name in sorted(names):
        if name.startswith("_") or name in policy.DENIED_ATTRIBUTES:
            continue
        try:
            yield f".{name}", getattr(obj, name)
        except Exception:  # properties that fail (bit_generator.cffi without cffi installed, ...)
            continue
    if isinstance(obj, dict):
        yield from ((f"[{key!r}]", value) for key, value in list(obj.items()))
    elif isinstance(obj, (list, tuple, set, frozenset)):
        yield from ((f"[{index}]", value) for index, value in enumerate(obj))


_ROTATIONS = Rotation.from_euler("z", [[0.0], [90.0]], degrees=True)
#: What a program can hold of scipy: the classes, instances of each kind, and their methods.
SCIPY_ROOTS = {
    "Rotation": Rotation,
    "Slerp": Slerp,
    "Rotation.from_euler(...)": Rotation.from_euler("xyz", [0.1, 0.2, 0.3]),
    "Rotation.random(4)": Rotation.random(4, rng=0),
    "Rotation.from_quat(2-d)": Rotation.from_quat(numpy.ones((2, 3, 4))),  # the array-API backend
    "Rotation.identity().as_quat": Rotation.identity().as_quat,
    "Rotation.create_group": Rotation.create_group,
    "Rotation.from_quat": Rotation.from_quat,
    "Rotation.shape": vars(Rotation)["shape"],
    "Slerp(...)": Slerp([0.0, 1.0], _ROTATIONS),
    "Slerp(...)(0.5)": Slerp([0.0, 1.0], _ROTATIONS)(0.5),
    "Rotation.align_vectors(...)": Rotation.align_vectors([[1.0, 0, 0]], [[0, 1.0, 0]]),
}


def _walk(roots, steps, children):
    """Breadth-first over ``children`` from ``roots``; returns (paths that reached a module, objects seen)."""
    module_dicts = {id(vars(module)) for module in list(sys.modules.values()) if module is not None}
    module_dicts.add(id(builtins.__dict__))
    seen, keep, found = set(), [], []
    frontier = list(roots.items())
    for _depth in range(steps + 1):
        following = []
        for path, obj in frontier:
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            keep.append(obj)  # keeps ids unique while the walk runs
            if isinstance(obj, (types.ModuleType, types.FrameType, types.CodeType)) or id(obj) in module_dicts:
                found.append(path)
                continue
            following.extend((path + step, value) for step, value in children(obj))
        frontier = following
    return found, len(seen)


def test_nothing_of_scipy_reaches_a_module_even_through_type():
    """Rotation and Slerp, their instances and methods, walked five steps by public attribute, item and
    ``type(...)``: no module, module dict, frame or code object (``_xp`` and ``_backend`` are modules, but
    private; see the next test)."""

    def children(obj):
        yield from _children(obj)
        yield ".type()", type(obj)

    found, seen = _walk(SCIPY_ROOTS, 5, children)
    assert seen > 1000
    assert found == []


def _program_peek(expression):
    """A function compiled as program code that evaluates ``expression`` on its ``self`` argument: the way a
    program gets past the static check's ``self._x`` exception with a library object as ``self``."""
    program = {"__builtins__": builtins.__dict__}
    exec(compile(f"def peek(self):\n    return {expression}", policy.PROGRAM_FILENAME, "exec"), program)
    return program["peek"]


@pytest.mark.parametrize("root", sorted(SCIPY_ROOTS))
def test_the_private_attributes_of_scipy_objects_refuse_program_code(root):
    obj = SCIPY_ROOTS[root]
    names = {name for name in dir(obj) if name.startswith("_") and not name.startswith("__")}
    if isinstance(obj, Rotation) or obj is Rotation:
        assert {"_xp", "_backend", "_quat", "_single", "_from_raw_quat"} <= names | {"_xp", "_backend"}
    for name in sorted(names):
        try:
            value = _program_peek(f"self.{name}")(obj)
        except namespace.LibraryInternalsRefused as exc:
            assert f"'{name}'" in str(exc) and "not available to robot programs" in str(exc)
            continue
        assert not isinstance(value, types.ModuleType), (root, name)
    if isinstance(obj, Rotation):
        for expression in ("self._xp", "self._backend", "'{0._xp}'.format(self)"):
            with pytest.raises(namespace.LibraryInternalsRefused):
                _program_peek(expression)(obj)
        with pytest.raises(namespace.LibraryInternalsRefused):
            exec(compile("r._backend = None", policy.PROGRAM_FILENAME, "exec"), {"r": obj})


def test_scipy_itself_still_reads_the_guarded_attributes():
    r = Rotation.from_euler("xyz", [0.1, 0.2, 0.3])
    assert isinstance(r._xp, types.ModuleType) and isinstance(r._backend, types.ModuleType)  # library code
    assert numpy.allclose((r * r.inv()).as_quat(), [0, 0, 0, 1])
    assert Rotation.concatenate([r, r]).as_quat().shape == (2, 4)


def test_served_scipy_classes_cannot_be_subclassed():
    for source in (
        "class R2(Rotation):\n    _xp = None",
        "R2 = type('R2', (Rotation,), {})",
        "class S(Slerp):\n    pass",
    ):
        with pytest.raises(TypeError, match="cannot be subclassed in robot programs"):
            run("from scipy.spatial.transform import Rotation, Slerp\n" + source)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix
def test_nothing_reaches_a_module_or_a_module_dict():
    rng = numpy.random.default_rng(0)
    roots = {f"np{'' if name == 'numpy' else '.' + name.partition('.')[2]}": ns for name, ns in MODULES.items()}
    roots.update(
        {
            "np.zeros(3)": numpy.zeros(3),
            "np.zeros(3).flat": numpy.zeros(3).flat,
            "structured": numpy.zeros(2, "f8,i4"),
            "rng": rng,
            "rng.bit_generator": rng.bit_generator,
            "np.random.RandomState(0)": numpy.random.RandomState(0),
            "np.random.SeedSequence(0)": numpy.random.SeedSequence(0),
            "np.dtype('f8')": numpy.dtype("f8"),
            "np.float64(1.0)": numpy.float64(1.0),
            "np.int32(1)": numpy.int32(1),
            "np.bool_(True)": numpy.bool_(True),
            "np.datetime64": numpy.datetime64("2020-01-01"),
            "np.nditer": numpy.nditer(numpy.zeros(3)),
            "np.errstate()": numpy.errstate(),
            "np.poly1d": numpy.poly1d([1, 2]),
            "np.vectorize": numpy.vectorize(abs),
            "np.finfo": numpy.finfo(float),
            "np.iinfo": numpy.iinfo(int),
            "np.matrix": numpy.matrix([[1, 2], [3, 4]]),
        }
    )
    roots.update(SCIPY_ROOTS)
    module_dicts = {id(vars(module)) for module in list(sys.modules.values()) if module is not None}
    module_dicts.add(id(builtins.__dict__))
    seen, keep, found = set(), [], []
    frontier = list(roots.items())
    for _depth in range(5):  # the roots, then four steps
        following = []
        for path, obj in frontier:
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            keep.append(obj)  # keeps ids unique while the walk runs
            if isinstance(obj, types.ModuleType) or id(obj) in module_dicts:
                found.append(path)
                continue
            following.extend((path + step, value) for step, value in _children(obj))
        frontier = following
    assert len(seen) > 10_000  # the walk did cover the namespaces
    assert found == []


# --- imports ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, fromlist, expected",
    [
        ("numpy", None, "numpy"),
        ("math", None, "math"),
        ("numpy.linalg", None, "numpy"),
        ("numpy.random", None, "numpy"),
        ("numpy", ("pi", "zeros"), "numpy"),
        ("numpy.linalg", ("norm",), "numpy.linalg"),
        ("numpy.random", ("default_rng",), "numpy.random"),
        ("numpy.fft", ("rfft",), "numpy.fft"),
        ("math", ("sqrt",), "math"),
        ("time", None, "time"),
        ("time", ("perf_counter",), "time"),
        ("scipy.spatial.transform", ("Rotation",), "scipy.spatial.transform"),
    ],
)
def test_resolve_import_serves_the_curated_modules(name, fromlist, expected):
    assert namespace.resolve_import(MODULES, name, {}, None, fromlist, 0) is MODULES[expected]


@pytest.mark.parametrize(
    "name, fromlist, level",
    [
        ("os", None, 0),
        ("sys", ("modules",), 0),
        ("builtins", None, 0),
        ("numpy.polynomial", None, 0),
        ("numpy.lib", ("stride_tricks",), 0),
        ("numpy.random.bit_generator", None, 0),
        ("numpy.testing", None, 0),
        ("", ("helpers",), 1),
        ("numpy", ("pi",), 1),
        ("scipy", None, 0),
        ("scipy", ("io",), 0),
        ("scipy.linalg", None, 0),
        ("scipy.spatial", ("transform",), 0),
        ("scipy.spatial.transform._rotation", None, 0),
        ("scipy._lib", None, 0),
    ],
)
def test_resolve_import_refuses_everything_else(name, fromlist, level):
    with pytest.raises(ImportError, match="robot programs; they may import only numpy, numpy.linalg"):
        namespace.resolve_import(MODULES, name, {"__name__": "__main__"}, None, fromlist, level)


def test_numpy_private_imports_load_the_module_but_hand_back_the_curated_numpy():
    result = namespace.resolve_import(MODULES, "numpy._core._methods", {}, None, [], 0)
    assert result is NP
    assert "numpy._core._methods" in sys.modules


@pytest.mark.parametrize(
    "source, bindings",
    [
        ("import numpy", {"numpy": "numpy"}),
        ("import numpy as np2", {"np2": "numpy"}),
        ("import math", {"math": "math"}),
        ("import math as m", {"m": "math"}),
        ("import numpy.linalg", {"numpy": "numpy"}),
        ("import numpy.linalg as la", {"la": "numpy.linalg"}),
        ("import numpy.random as npr, numpy.fft as nf", {"npr": "numpy.random", "nf": "numpy.fft"}),
        ("def f():\n    import numpy.fft as nf\n    return nf\nx = f()", {"x": "numpy.fft"}),
        ("from numpy import linalg, random as r", {"linalg": "numpy.linalg", "r": "numpy.random"}),
        ("import time", {"time": "time"}),
        ("import time as t", {"t": "time"}),
        ("import scipy.spatial.transform as sst", {"sst": "scipy.spatial.transform"}),
    ],
)
def test_import_statements_bind_the_curated_modules(source, bindings):
    program = run(source)
    for name, module_name in bindings.items():
        assert program[name] is MODULES[module_name], name


def test_import_scipy_spatial_transform_binds_only_that_path():
    program = run("import scipy.spatial.transform\nR = scipy.spatial.transform.Rotation")
    assert program["R"] is Rotation
    scipy_ns = program["scipy"]
    assert {k for k in vars(scipy_ns) if not k.startswith("_")} == {"spatial"}
    assert {k for k in vars(scipy_ns.spatial) if not k.startswith("_")} == {"transform"}
    assert scipy_ns.spatial.transform is MODULES["scipy.spatial.transform"]
    for name in ("linalg", "io", "sparse", "special"):
        assert not hasattr(scipy_ns, name)
    assert not hasattr(scipy_ns.spatial, "distance") and not hasattr(scipy_ns.spatial, "KDTree")


def test_a_program_uses_rotation_and_slerp_and_time():
    program = run(
        "from scipy.spatial.transform import Rotation as R, Slerp\nimport time\n"
        "r = R.from_euler('xyz', [10, 20, 30], degrees=True)\nq = r.as_quat(); m = r.as_matrix()\n"
        "s = Slerp([0, 1], R.from_euler('z', [[0], [90]], degrees=True))\n"
        "half = s([0.5]).as_euler('xyz', degrees=True)\n"
        "text = repr(r); inv = (r * r.inv()).magnitude(); group = len(R.create_group('O'))\n"
        "t0 = time.perf_counter(); time.sleep(0.01); slept = time.perf_counter() - t0"
    )
    expected = Rotation.from_euler("xyz", [10, 20, 30], degrees=True)
    assert numpy.allclose(program["q"], expected.as_quat()) and numpy.allclose(program["m"], expected.as_matrix())
    assert numpy.allclose(program["half"], [[0, 0, 45]])
    assert program["text"].startswith("Rotation.from_matrix(") and program["inv"] < 1e-9 and program["group"] == 24
    assert program["slept"] >= 0.01


def test_from_imports_bind_the_curated_names():
    program = run(
        "from numpy import pi, zeros as z\nfrom numpy.linalg import norm\nfrom numpy.random import default_rng\n"
        "from numpy.fft import rfft\nfrom math import sqrt, tau\n"
    )
    assert program["pi"] == numpy.pi and program["z"] is numpy.zeros and program["norm"] is numpy.linalg.norm
    assert program["default_rng"] is numpy.random.default_rng and program["rfft"] is numpy.fft.rfft
    assert program["sqrt"] is sys.modules["math"].sqrt and program["tau"] == sys.modules["math"].tau


@pytest.mark.parametrize(
    "source, fragment",
    [
        ("import os", "'os' is not available to robot programs"),
        ("import numpy.polynomial", "'numpy.polynomial' is not available"),
        ("from numpy.lib import stride_tricks", "'numpy.lib' is not available"),
        ("import numpy.random.bit_generator as bg", "'numpy.random.bit_generator' is not available"),
        ("from . import helpers", "'.' is not available"),
        ("from numpy import load", "cannot import name 'load'"),
        ("from numpy.random import bit_generator", "cannot import name 'bit_generator'"),
        ("from numpy import polynomial", "cannot import name 'polynomial'"),
        ("import numpy._core._methods as m", "cannot import name '_core'"),
        ("from numpy._core import _methods", "cannot import name '_methods'"),
        ("import scipy", "'scipy' is not available to robot programs"),
        ("from scipy import io", "'scipy' is not available to robot programs"),
        ("import scipy.linalg", "'scipy.linalg' is not available to robot programs"),
        ("import scipy.spatial", "'scipy.spatial' is not available to robot programs"),
        ("from scipy.spatial import transform", "'scipy.spatial' is not available to robot programs"),
        ("from scipy.spatial.transform import RigidTransform", "cannot import name 'RigidTransform'"),
        ("from scipy.spatial.transform import rotation", "cannot import name 'rotation'"),
        ("from time import strftime", "cannot import name 'strftime'"),
    ],
)
def test_other_import_statements_raise_import_error(source, fragment):
    with pytest.raises(ImportError, match=re.escape(fragment)):
        run(source)


def test_numpy_still_imports_its_own_modules_lazily():
    """``ndarray.mean``, printing and dtype reprs import numpy's private modules from C, through the program's
    ``__import__``; they must keep working."""
    program = run(
        "a = np.zeros((2, 2))\n"
        "m = a.mean(); s = a.std(); text = repr(a); d = repr(np.dtype([('x', 'f8')]))\n"
        "n = np.linalg.norm(np.ones(4)); r = np.random.default_rng(0).normal()\n"
        "inv = np.linalg.inv(np.eye(2)); f = np.fft.rfft(np.ones(4)); grid = np.r_[0:3, 7]\n"
        "try:\n    a.sum(axis=5)\nexcept Exception as exc:\n    axis_error = type(exc).__name__\n"
        "with np.errstate(divide='raise'):\n"
        "    try:\n        np.float64(1.0) / np.float64(0.0)\n    except FloatingPointError:\n        fpe = True\n"
    )
    assert program["m"] == 0.0 and program["s"] == 0.0
    assert program["text"] == "array([[0., 0.],\n       [0., 0.]])"
    assert program["d"] == "dtype([('x', '<f8')])"
    assert program["n"] == 2.0 and isinstance(program["r"], float)
    assert program["inv"].tolist() == [[1.0, 0.0], [0.0, 1.0]] and program["f"][0] == 4
    assert program["grid"].tolist() == [0, 1, 2, 7]
    assert program["axis_error"] == "AxisError" and program["fpe"] is True


def test_available_names_drive_the_policy_check():
    available = namespace.available_names(MODULES)
    assert available == namespace.available_names()
    good = (
        "from numpy import pi, zeros, random\nfrom numpy.linalg import norm, inv\nfrom math import tau\n"
        "from time import sleep\nfrom scipy.spatial.transform import Rotation, Slerp\n"
    )
    assert policy.check_source(good, available) == []
    source = "from numpy.random import bit_generator\nfrom numpy import polynomial\n"
    violations = policy.check_source(source, available)
    assert [(v.line, v.message) for v in violations] == [
        (1, "numpy.random has no name 'bit_generator' available to robot programs"),
        (2, "numpy has no name 'polynomial' available to robot programs"),
    ]
