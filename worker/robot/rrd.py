"""The 3D view of an episode (worker.robot.scene3d) as a Rerun recording (.rrd), for researchers who
inspect episodes in the Rerun viewer locally (``rerun episode-12.rrd``, viewer version = RERUN_VERSION).

What is logged, all in the robot API's world frame (robot0 base, metres), on two timelines: ``call``
(the seq of the call that produced an item) and ``sim_time`` (simulated seconds, for the robot's state):

- ``world/clouds/call_<seq>/<camera>``: observation point clouds (Points3D with their colours);
- ``world/masks/call_<seq>/<i>``: segmentation masks' points (Points3D, one colour per mask);
- ``world/grasps/call_<seq>``: grasp candidates as line glyphs (palm and two fingers, LineStrips3D), the
  best in red, the rest grey;
- ``world/targets/arm<a>``: each motion's target pose as a gripper glyph; ``world/plans/arm<a>``: the
  planned grasp-point path (LineStrips3D);
- ``world/executed/arm<a>/path``: the executed grasp-point path; ``.../grasp_point``: where it is at each
  sample (Points3D on the sim_time timeline);
- ``robot/arm<a>/joint<j>`` and ``robot/arm<a>/gripper``: joint angles (rad) and opening (m) as scalars.

Needs the ``rerun-sdk`` package (pinned in requirements.txt); the file is written by the SDK itself.
Plain Python (no Django).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from .scene3d import decode_points

#: The rerun-sdk this exporter was written against; open the file with the same viewer version.
RERUN_VERSION = "0.41.0"

#: Gripper glyph in the grasp frame (z approach, y closing), metres: palm bar and two fingers.
_FINGER = 0.04
_OPEN = 0.04
_BACK = 0.06


def _pose(row12) -> np.ndarray:
    T = np.eye(4)
    T[:3, :4] = np.asarray(row12, dtype=np.float64).reshape(3, 4)
    return T


def gripper_glyph(T: np.ndarray) -> list[np.ndarray]:
    """Three line strips (palm with stem, left finger, right finger) of a gripper at grasp pose ``T``
    (4 x 4, world), each (N, 3) world points."""
    local = [
        np.array([[0, 0, -_BACK - _FINGER], [0, 0, -_FINGER]]),
        np.array([[0, -_OPEN, -_FINGER], [0, _OPEN, -_FINGER]]),
        np.array([[0, -_OPEN, -_FINGER], [0, -_OPEN, 0.0]]),
        np.array([[0, _OPEN, -_FINGER], [0, _OPEN, 0.0]]),
    ]
    return [pts @ T[:3, :3].T + T[:3, 3] for pts in local]


def to_rrd(doc: dict, name: str = "episode") -> bytes:
    """The .rrd bytes of a scene3d document (worker.robot.scene3d.load). Raises ImportError when
    rerun-sdk is missing, ValueError for a document of another schema."""
    import rerun as rr

    from .scene3d import SCHEMA

    if doc.get("schema") != SCHEMA:
        raise ValueError(f"not a {SCHEMA} document: {doc.get('schema')!r}")
    rec = rr.RecordingStream("aspire_web", recording_id=name)
    fd, path = tempfile.mkstemp(prefix="aspire-", suffix=".rrd")
    os.close(fd)
    try:
        rec.save(path)
        rec.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
        rec.log(
            "world/axes",
            rr.Arrows3D(
                origins=np.zeros((3, 3)), vectors=np.eye(3) * 0.2, colors=[[255, 0, 0], [0, 200, 0], [0, 0, 255]]
            ),
            static=True,
        )
        for i, cloud in enumerate(doc.get("clouds", [])):
            rec.set_time("call", sequence=int(cloud["seq"]))
            xyz, rgb = decode_points(cloud)
            if cloud["kind"] == "scene":
                path_ = f"world/clouds/call_{cloud['seq']}/{cloud.get('camera') or i}"
                rec.log(path_, rr.Points3D(xyz, colors=rgb, radii=0.003))
            else:
                path_ = f"world/masks/call_{cloud['seq']}/{i}"
                rec.log(path_, rr.Points3D(xyz, colors=[255, 0, 200], radii=0.004, labels=cloud.get("label") or None))
        for grasp in doc.get("grasps", []):
            rec.set_time("call", sequence=int(grasp["seq"]))
            strips, colors = [], []
            for k, row in enumerate(grasp["poses"]):
                best = k == grasp.get("best", 0)
                for strip in gripper_glyph(_pose(row)):
                    strips.append(strip)
                    colors.append([230, 30, 30] if best else [150, 150, 150])
            rec.log(f"world/grasps/call_{grasp['seq']}", rr.LineStrips3D(strips, colors=colors, radii=0.0015))
        for target in doc.get("targets", []):
            rec.set_time("call", sequence=int(target["seq"]))
            rec.log(
                f"world/targets/arm{target['arm']}",
                rr.LineStrips3D(gripper_glyph(_pose(target["pose"])), colors=[60, 200, 90], radii=0.002),
            )
        for plan in doc.get("plans", []):
            rec.set_time("call", sequence=int(plan["seq"]))
            rec.log(
                f"world/plans/arm{plan['arm']}",
                rr.LineStrips3D([np.asarray(plan["path"], dtype=np.float64)], colors=[240, 160, 40], radii=0.002),
            )
        samples = doc.get("samples", {})
        times = samples.get("t", [])
        for a, poses in enumerate(samples.get("pose", [])):
            joints = samples["joints"][a]
            gripper = samples["gripper"][a]
            path_points = np.asarray([p[:3] for p in poses], dtype=np.float64).reshape(-1, 3)
            rec.log(f"world/executed/arm{a}/path", rr.LineStrips3D([path_points], colors=[60, 190, 240]), static=True)
            for k, t in enumerate(times):
                rec.set_time("sim_time", duration=float(t))
                rec.set_time("call", sequence=int(samples["seq"][k]))
                rec.log(f"world/executed/arm{a}/grasp_point", rr.Points3D(path_points[k : k + 1], radii=0.008))
                for j, angle in enumerate(joints[k]):
                    rec.log(f"robot/arm{a}/joint{j + 1}", rr.Scalars(float(angle)))
                rec.log(f"robot/arm{a}/gripper", rr.Scalars(float(gripper[k])))
        rec.flush()
        rec.disconnect()
        with open(path, "rb") as fh:
            return fh.read()
    finally:
        os.unlink(path)
