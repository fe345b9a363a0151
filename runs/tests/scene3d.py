"""A finished episode of the real Lift program with its 3D view (worker.robot.scene3d), run through the web
app's sink and media storage (runs.work), for the 3D view's tests. The starter program plans grasps too,
so every kind of item is there."""

from pathlib import Path

from runs import services, work
from runs.models import Episode

from .factories import RunFactory

ROOT = Path(__file__).resolve().parents[2]
#: The camera-only Lift program with a grasp plan added after it finds the cube (to show its candidates).
PROGRAM = (
    (ROOT / "worker" / "programs" / "robosuite_lift.py")
    .read_text()
    .replace(
        "cube_points = mask_to_world_points(",
        'candidates, grasp_scores = plan_grasp(depth, K, cubes[0]["mask"])\n'
        "top_grasp = select_top_down_grasp(candidates, grasp_scores, cam_pose)\n"
        "cube_points = mask_to_world_points(",
        1,
    )
)


def scene3d_episode(user, seed: int = 101) -> Episode:
    """A finished, successful episode of ``user``'s run of PROGRAM with a 3D view."""
    services.sync_catalog()
    run = RunFactory(owner=user, seeds=[seed], program=PROGRAM)
    work.run_episode(run.candidates.get().pk, Episode.Split.DEBUG, seed)
    return Episode.objects.get(run=run)
