"""Static policy check of robot programs (worker.sandbox.policy)."""

import pytest

from worker.sandbox.policy import IMPORT_RULE, check_source, is_syntax_error


def messages(source):
    return [v.message for v in check_source(source)]


@pytest.mark.parametrize(
    "source, fragment",
    [
        ("import os", "import of os is not allowed"),
        ("from pathlib import Path", "import from pathlib"),
        ("x = open('/etc/passwd').read()", "'open': file access"),
        ("eval('1+1')", "eval is not allowed"),
        ("exec('x=1')", "exec is not allowed"),
        ("__import__('os')", "'__import__': __import__ is not allowed; use an import statement"),
        ("g = globals()", "globals() is not allowed"),
        ("x = ().__class__", "dunder"),
        ("f = (i for i in []).gi_frame", "'.gi_frame'"),
        ("f = get_observation.__globals__", "dunder"),
        ("np.load('x.npy')", "'.load'"),
        ("g = np.random.default_rng.func_globals", "'.func_globals'"),
        ("c = rng.normal.func_closure", "'.func_closure'"),
        ("a = np.zeros(3); a.tofile('x')", "'.tofile'"),
        ("p = a.ctypes", "'.ctypes'"),
        ("m = np.random._pickle", "private attribute"),
        ("x = __builtins__", "builtins namespace"),
        ("self = np\nself._x", "rebinding 'self'"),
    ],
)
def test_it_rejects_reaching_outside_the_api(source, fragment):
    found = messages(source)
    assert any(fragment in m for m in found), found


def test_it_accepts_an_ordinary_program():
    source = """
class Finder:
    def __init__(self, prompt):
        self._prompt = prompt
    def find(self, rgb):
        return segment_text_prompt(rgb, self._prompt)

def centre(points):
    return points[points[:, 2] > points[:, 2].max() - 0.005].mean(axis=0)

if __name__ == "__main__":
    obs = get_observation()
    print(f"{np.pi:.3f}", math.sqrt(2), type(obs))
"""
    assert check_source(source) == []


def test_it_reports_the_line_and_source_of_each_violation():
    violations = check_source("x = 1\ny = 2\nimport socket\n")
    assert [(v.line, v.source) for v in violations] == [(3, "import socket")]
    assert "line 3: import socket" in violations[0].describe()


def test_it_turns_a_syntax_error_into_one_violation():
    violations = check_source("def f(:\n    pass\n")
    assert is_syntax_error(violations)
    assert violations[0].line == 1


def test_it_survives_null_bytes_and_absurd_nesting():
    assert check_source("x = 1\x00")
    assert check_source("x = " + "(" * 5000 + ")" * 5000)


@pytest.mark.parametrize(
    "source",
    [
        "import numpy",
        "import numpy as np",
        "import math",
        "import math as m",
        "import numpy.linalg",
        "import numpy.linalg as la",
        "import numpy.random as npr, numpy.fft",
        "from numpy import pi, zeros as z",
        "from numpy import linalg, random, fft",
        "from numpy.linalg import norm, inv",
        "from numpy.random import default_rng",
        "from numpy.fft import rfft as fourier",
        "from math import sqrt, tau",
        "from numpy import (\n    pi,\n    zeros,\n)",
        "def f():\n    import numpy.fft as nf\n    return nf",
        "import time",
        "import time as t",
        "from time import time, perf_counter, monotonic, sleep",
        "import scipy.spatial.transform",
        "import scipy.spatial.transform as sst",
        "from scipy.spatial.transform import Rotation",
        "from scipy.spatial.transform import Rotation as R",
        "from scipy.spatial.transform import Rotation, Slerp",
        "import numpy as np\nfrom scipy.spatial.transform import Rotation\nq = Rotation.from_euler('z', 0.5).as_quat()",
    ],
)
def test_it_accepts_the_allowed_imports(source):
    assert check_source(source) == []


@pytest.mark.parametrize(
    "source, line, message",
    [
        ("import os", 1, f"import of os is not allowed: {IMPORT_RULE}"),
        ("x = 1\nimport numpy.polynomial as P", 2, f"import of numpy.polynomial is not allowed: {IMPORT_RULE}"),
        ("import numpy.random.bit_generator", 1, f"import of numpy.random.bit_generator is not allowed: {IMPORT_RULE}"),
        ("import numpy._core", 1, f"import of numpy._core is not allowed: {IMPORT_RULE}"),
        ("import scipy.linalg as sla", 1, f"import of scipy.linalg is not allowed: {IMPORT_RULE}"),
        ("import scipy.linalg", 1, f"import of scipy.linalg is not allowed: {IMPORT_RULE}"),
        ("import scipy", 1, f"import of scipy is not allowed: {IMPORT_RULE}"),
        ("import scipy.spatial", 1, f"import of scipy.spatial is not allowed: {IMPORT_RULE}"),
        (
            "import scipy.spatial.transform._rotation",
            1,
            f"import of scipy.spatial.transform._rotation is not allowed: {IMPORT_RULE}",
        ),
        ("from scipy import io", 1, f"import from scipy is not allowed: {IMPORT_RULE}"),
        ("from scipy.spatial import transform", 1, f"import from scipy.spatial is not allowed: {IMPORT_RULE}"),
        (
            "from scipy.spatial.transform import RigidTransform",
            1,
            f"scipy.spatial.transform has no name 'RigidTransform' available to robot programs: {IMPORT_RULE}",
        ),
        ("from time import strftime", 1, f"time has no name 'strftime' available to robot programs: {IMPORT_RULE}"),
        (
            "from scipy.spatial.transform import *",
            1,
            "'from scipy.spatial.transform import *' is not allowed: import the names you use",
        ),
        ("\n\nfrom pathlib import Path", 3, f"import from pathlib is not allowed: {IMPORT_RULE}"),
        ("from numpy.lib import stride_tricks", 1, f"import from numpy.lib is not allowed: {IMPORT_RULE}"),
        ("from . import helpers", 1, f"import from . is not allowed: {IMPORT_RULE}"),
        ("from .numpy import pi", 1, f"import from .numpy is not allowed: {IMPORT_RULE}"),
        ("from numpy import *", 1, "'from numpy import *' is not allowed: import the names you use"),
        ("from math import *", 1, "'from math import *' is not allowed: import the names you use"),
        ("from numpy import _core", 1, "importing the private name '_core' from numpy is not allowed"),
        ("from numpy import load", 1, "'load' from numpy is not available to robot programs"),
        ("from numpy import ma", 1, "'ma' from numpy is not available to robot programs"),
        ("from numpy.random import ctypes", 1, "'ctypes' from numpy.random is not available to robot programs"),
        ("import numpy as __builtins__", 1, "'__builtins__': the builtins namespace is not reachable"),
        ("import math as __loader__", 1, "the dunder name '__loader__' is not allowed"),
        ("from math import pi as self", 1, "rebinding 'self' is not allowed; use it only as a method parameter"),
        ("from numpy import pi as open", 1, "'open': file access is not available to robot programs"),
    ],
)
def test_it_refuses_other_imports_naming_the_line(source, line, message):
    assert [(v.line, v.message) for v in check_source(source)] == [(line, message)]


def test_it_refuses_each_bad_module_of_an_import_statement():
    violations = check_source("import numpy as np, os, math, sys")
    assert [v.message.split(":")[0] for v in violations] == [
        "import of os is not allowed",
        "import of sys is not allowed",
    ]
    assert {v.source for v in violations} == {"import numpy as np, os, math, sys"}


def test_the_import_rule_names_every_importable_module():
    assert IMPORT_RULE == (
        "robot programs may import only numpy, numpy.linalg, numpy.random, numpy.fft, math, "
        "time (time, perf_counter, monotonic, sleep) and scipy.spatial.transform (Rotation and Slerp), "
        "e.g. 'from scipy.spatial.transform import Rotation'; np, numpy and math are also predefined"
    )


def test_available_names_refuse_names_a_module_does_not_offer():
    available = {"numpy": frozenset({"pi", "zeros"}), "numpy.linalg": frozenset({"norm"})}
    source = "from numpy import pi, nothere\nfrom numpy.linalg import norm, inv\nfrom math import sqrt\n"
    assert [(v.line, v.message) for v in check_source(source, available)] == [
        (1, "numpy has no name 'nothere' available to robot programs"),
        (2, "numpy.linalg has no name 'inv' available to robot programs"),
        (3, "math has no name 'sqrt' available to robot programs"),
    ]
    assert check_source("from numpy import pi, zeros\nfrom numpy.linalg import norm", available) == []


def test_without_available_names_only_the_known_refusals_apply():
    assert check_source("from numpy import nothere") == []
    assert check_source("from scipy.spatial.transform import Rotation\nfrom time import sleep") == []
    assert len(check_source("from scipy.spatial.transform import RotationSpline")) == 1
    assert check_source("import numpy as np\nx = np.pi", available={"numpy": frozenset()}) == []
