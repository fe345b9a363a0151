"""Static policy check of robot programs (worker.sandbox.policy)."""

import pytest

from worker.sandbox.policy import check_source, is_syntax_error


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
        ("__import__('os')", "imports are not allowed"),
        ("g = globals()", "globals() is not allowed"),
        ("x = ().__class__", "dunder"),
        ("f = (i for i in []).gi_frame", "'.gi_frame'"),
        ("f = get_observation.__globals__", "dunder"),
        ("np.load('x.npy')", "'.load'"),
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
