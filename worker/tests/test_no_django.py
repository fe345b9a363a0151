"""The engine and its tests are plain Python: importing every module under worker/ (these tests and their
conftest included) loads no part of Django, the web stack or the apps."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Top-level packages no worker module may load, directly or through another import.
WEB_STACK = (
    "django",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "daphne",
    "celery",
    "factory",
    "aspire_web",
    "accounts",
    "sharing",
    "runs",
    "skills",
    "experiments",
    "testing",
)

IMPORT_EVERYTHING = f"""
import importlib, json, pkgutil, sys

import worker

# worker.sandbox.child is the sandbox's own process, run as a script beside codec, namespace and policy
# (which it imports as top-level modules); it is not imported in a host process.
names = [m.name for m in pkgutil.walk_packages(worker.__path__, "worker.") if m.name != "worker.sandbox.child"]
for name in names:
    importlib.import_module(name)
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({WEB_STACK!r}))
print("RESULT " + json.dumps({{"modules": names, "loaded": loaded}}))
"""


def test_every_worker_module_and_test_imports_without_django():
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.rsplit("RESULT ", 1)[1])
    assert {"worker.engine", "worker.sandbox.host", "worker.tests.conftest", __name__} <= set(result["modules"])
    assert result["loaded"] == []
