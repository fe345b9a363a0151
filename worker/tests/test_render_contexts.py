"""Several simulators in one thread (the engine's cache holds two and evicts the oldest): closing one
must not break another's rendering. mjr_freeContext deletes GL objects in the current context, so a
simulator closed while another's context is current used to delete that one's framebuffers, and its
next depth image was garbage (robosuite's depth-range assertion failed in get_observation)."""

import numpy as np

from worker.engine import make_adapter
from worker.sim.catalog import get_task

LIBERO = "libero:libero_90/KITCHEN_SCENE10_close_the_top_drawer_of_the_cabinet"


def test_closing_one_simulator_leaves_the_others_depth_intact():
    lift = make_adapter(get_task("robosuite:Lift"))
    try:
        lift.reset(3)
        before = lift.render("agentview", depth=True).depth
        for _ in range(2):
            other = make_adapter(get_task(LIBERO))
            other.reset(1)
            other.render(other.spec.cameras[0], depth=True)
            other.render_keyframe(other.spec.cameras[0])
            lift.render("agentview", depth=True)  # Lift's context is the current one now
            lift.render_keyframe("agentview")
            other.close()
        after = lift.render("agentview", depth=True).depth
        assert np.isfinite(after).all() and (after > 0).all()
        np.testing.assert_allclose(after, before, atol=1e-4)
    finally:
        lift.close()
