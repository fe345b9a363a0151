"""The "realistic" perception mode: model-like segmentation and depth-sensor noise, and the "oracle" mode.

Synthetic frames check the noise models' statistics against the figures documented in
worker.robot.perception; real MuJoCo frames (robosuite Lift and Stack) check what programs get.
"""

import numpy as np
import pytest

from worker.engine import EngineSettings, run_episode, simulators
from worker.events import MemorySink
from worker.robot import geometry as geo
from worker.robot import status as st
from worker.robot.api import RobotAPI
from worker.robot.perception import DepthNoise, MaskNoise, mask_iou, noise_rng, occluded_fraction
from worker.robot.segmenter import POINT_LABEL, CpuSegmenter, HttpSegmenter, LexicalMatcher
from worker.robot.tracer import Tracer
from worker.sim.base import CameraFrame
from worker.sim.catalog import COMMON_OBJECTS, SceneObject, get_task

CUBE = SceneObject("cube", ("cube", "red cube", "block", "red block"), ("cube",), "red")
OBJECTS = [CUBE, *COMMON_OBJECTS]  # 0 cube, 1 table, 2 gripper, 3 robot arm
KEYS = range(300)


def frame(seg, depth=None):
    rgb = np.zeros(seg.shape + (3,), dtype=np.uint8)
    return CameraFrame("agentview", rgb, depth, seg, np.eye(3), np.eye(4))


def scene(size=128):
    """Table below, a 30x30 px cube on it (1.0 m away), the gripper in a corner (0.6 m); (seg, depth)."""
    seg = np.full((size, size), -1, dtype=np.int32)
    depth = np.full((size, size), 2.0, dtype=np.float32)
    seg[70:, :], depth[70:, :] = 1, 1.2
    seg[40:70, 40:70], depth[40:70, 40:70] = 0, 1.0
    seg[:16, :16], depth[:16, :16] = 2, 0.6
    return seg, depth


def segment(seg, depth, prompt, key, mode="realistic"):
    return CpuSegmenter(LexicalMatcher()).segment_text(frame(seg, depth), OBJECTS, prompt, mode=mode, key=key)


# -- segmentation on synthetic frames ------------------------------------------------------------------


def test_mask_iou_of_a_visible_object_follows_the_documented_sam_figure():
    # MaskNoise draws 1 - IoU so that 94% of masks have IoU > 0.9 (SA-1B, Kirillov et al. 2023).
    seg, depth = scene()
    truth = seg == 0
    ious, found = [], 0
    for key in KEYS:
        dets = [d for d in segment(seg, depth, "red cube", (key,)) if d.score > 0.5]
        if dets:
            found += 1
            ious.append(mask_iou(dets[0].mask, truth))
    ious = np.array(ious)
    assert found >= 0.97 * len(KEYS)  # an unoccluded 900 px object is missed about 1% of the time
    assert 0.89 <= np.mean(ious > 0.9) <= 0.98
    assert 0.95 <= np.median(ious) <= 0.995 and ious.min() >= 0.5 - 1e-9
    assert np.mean(ious == 1.0) < 0.2  # masks are not the exact render


def test_labels_are_the_prompt_and_never_a_catalog_name():
    seg, depth = scene()
    for prompt in ("red cube", "block", "Cube", "block on the table"):
        labels = [{d.label for d in segment(seg, depth, prompt, (key,))} for key in range(20)]
        assert all(found <= {prompt} for found in labels) and sum(found == {prompt} for found in labels) >= 18
    assert {d.label for d in segment(seg, depth, "block on the table", (1,), mode="oracle")} == {"cube", "table"}


def test_the_same_call_replays_and_another_episode_seed_differs():
    seg, depth = scene()
    first = segment(seg, depth, "cube", (7, 0, "agentview"))
    again = segment(seg, depth, "cube", (7, 0, "agentview"))
    assert [(d.score, d.box) for d in first] == [(d.score, d.box) for d in again]
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(first, again))
    others = [segment(seg, depth, "cube", (seed, 0, "agentview"))[0].mask for seed in range(8, 14)]
    assert any(not np.array_equal(first[0].mask, other) for other in others)


def test_vague_prompts_bring_low_confidence_false_positives():
    # "block on the table" matches the cube and the table by half (LexicalMatcher): false positives on
    # the gripper with probability fp_base + fp_vague * 0.5 = 0.28; an exact name gives fp_base = 0.03.
    seg, depth = scene()
    gripper = seg == 2
    noise = MaskNoise()

    def false_positives(prompt):
        found = []
        for key in KEYS:
            found += [d for d in segment(seg, depth, prompt, (key,)) if (d.mask & gripper).sum() > d.mask.sum() / 2]
        return found

    vague, exact = false_positives("block on the table"), false_positives("red cube")
    assert 0.18 <= len(vague) / len(KEYS) <= 0.40
    assert len(exact) / len(KEYS) <= 0.08
    assert all(noise.fp_score[0] <= d.score <= noise.fp_score[1] for d in vague + exact)
    dets = next(d for key in KEYS if len(d := segment(seg, depth, "block on the table", (key,))) == 3)
    assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)


def test_partly_occluded_objects_are_missed_sometimes_and_visible_ones_rarely():
    seg, depth = scene()
    occluded_seg, occluded_depth = seg.copy(), depth.copy()
    occluded_seg[40:70, 30:65], occluded_depth[40:70, 30:65] = 2, 0.6  # the gripper hides 25 of 30 columns
    small_seg = seg.copy()
    small_seg[40:70, 40:65] = 1  # the same 150 visible pixels with nothing in front
    assert (occluded_seg == 0).sum() == (small_seg == 0).sum() == 150
    occluded = occluded_fraction(occluded_seg, occluded_depth, 0)
    assert 0.3 < occluded < 0.5 and occluded_fraction(small_seg, depth, 0) == 0.0
    expected = MaskNoise().miss_probability(150, occluded)

    def miss_rate(s, d):
        return np.mean([not any(x.score > 0.5 for x in segment(s, d, "red cube", (key,))) for key in KEYS])

    assert abs(miss_rate(occluded_seg, occluded_depth) - expected) < 0.07 and expected > 0.1
    assert miss_rate(small_seg, depth) <= 0.04


def test_an_object_split_by_an_occluder_is_sometimes_found_only_in_part():
    seg, depth = scene()
    seg[40:70, 50:56], depth[40:70, 50:56] = 2, 0.6  # a bar in front of the cube splits it in two
    left, right = seg[40:70, 40:50] == 0, seg[40:70, 56:70] == 0
    partial = whole = 0
    for key in KEYS:
        dets = [d for d in segment(seg, depth, "red cube", (key,)) if d.score > 0.5]
        if dets:
            mask = dets[0].mask
            on_left, on_right = mask[40:70, 40:50][left].mean(), mask[40:70, 56:70][right].mean()
            partial += on_left < 0.2 and on_right > 0.5
            whole += on_left > 0.5 and on_right > 0.5
    assert partial >= 0.1 * len(KEYS) and whole >= 0.4 * len(KEYS)


def test_point_prompts_give_the_segment_at_the_point_without_a_name():
    seg, depth = scene()
    seg[40:70, 50:56], depth[40:70, 50:56] = 2, 0.6  # the cube, split in two by a nearer bar
    segmenter = CpuSegmenter(LexicalMatcher())
    dets = segmenter.segment_points(frame(seg, depth), OBJECTS, [(45, 55), (65, 55), (46, 50), (5, 5)], key=(3,))
    assert [d.label for d in dets] == [POINT_LABEL] * 3  # left part, right part, the gripper's corner
    left, right = dets[0].mask, dets[1].mask
    assert left[40:70, 40:50].mean() > 0.7 and left[40:70, 56:70].mean() < 0.1
    assert right[40:70, 56:70].mean() > 0.7 and right[40:70, 40:50].mean() < 0.1
    oracle = segmenter.segment_points(frame(seg, depth), OBJECTS, [(45, 55), (65, 55)], mode="oracle")
    assert [d.label for d in oracle] == ["cube"] and oracle[0].mask.sum() == (seg == 0).sum()


def test_the_noise_is_cheap():
    seg, depth = scene(256)
    seg[140:, :] = 1  # a table filling half the image: the largest mask to perturb
    import time

    started = time.perf_counter()
    for key in range(10):
        segment(seg, depth, "table", (key,))
        DepthNoise().apply(depth, noise_rng(key))
    per_call = (time.perf_counter() - started) / 10
    assert per_call < 0.1, f"{per_call * 1000:.1f} ms per segmentation + depth noise"  # about 10 ms when idle


# -- depth noise ----------------------------------------------------------------------------------------


def test_depth_noise_grows_with_distance_as_nguyen_et_al_2012():
    noise = DepthNoise()
    for z in (0.5, 1.0, 2.0):
        plane = np.full((128, 128), z, dtype=np.float32)
        noisy = noise.apply(plane, noise_rng(z))
        sigma = 0.0012 + 0.0019 * (z - 0.4) ** 2
        assert noisy.dtype == np.float32 and np.all(noisy > 0)  # a plane has no edges, no invalid pixels
        assert abs(float(np.std(noisy - z)) / sigma - 1) < 0.05 and abs(float(np.mean(noisy - z))) < 1e-4
    assert np.isclose(noise.sigma(0.1), 0.0012)  # clamped below 0.4 m


def test_depth_edges_lose_pixels_on_their_far_side_and_invalid_pixels_read_zero():
    depth = np.full((200, 100), 1.0, dtype=np.float32)
    depth[:, 50:] = 1.5  # a step: column 50 is the far side of the edge
    depth[0, 0] = np.nan
    noisy = DepthNoise().apply(depth, noise_rng("edge"))
    invalid = noisy == 0
    assert not np.isnan(noisy).any() and invalid[0, 0]
    rest = invalid.copy()
    rest[:, 50] = False
    rest[0, 0] = False
    assert not rest.any()
    assert 0.35 <= invalid[:, 50].mean() <= 0.65  # edge_dropout = 0.5
    assert np.array_equal(noisy, DepthNoise().apply(depth, noise_rng("edge")))
    K = np.array([[100.0, 0, 50], [0, 100.0, 100], [0, 0, 1]])
    assert len(geo.backproject(noisy, K)) == int((~invalid).sum())


# -- the API and the engine on real MuJoCo ----------------------------------------------------------


def api_for(task, seed, mode="realistic", **kwargs):
    adapter, ik, planners, segmenter = simulators().get(get_task(task))
    adapter.reset(seed)
    tracer = Tracer(
        enabled=False, media=None, emit=lambda r: None, capture_frame=lambda: (None, ""), sim_time=adapter.sim_time
    )
    segmenter = kwargs.pop("segmenter", segmenter)
    return RobotAPI(
        adapter,
        tracer,
        ik=ik,
        planners=planners,
        segmenter=segmenter,
        perception_mode=mode,
        episode_seed=seed,
        **kwargs,
    )


def observe(api, camera="agentview"):
    cam = api.dispatch("get_observation", [[camera]], {})[camera]
    return cam, api._observations[next(reversed(api._observations))]  # what the program got, the exact render


def test_on_a_real_render_masks_are_close_labels_are_the_prompt_and_depth_is_noisy():
    ious = []
    for seed in range(1, 7):
        api = api_for("robosuite:Lift", seed)
        cam, exact = observe(api)
        truth = exact.segmentation == [o.label for o in api._objects()].index("cube")
        dets = api.dispatch("segment_text_prompt", [cam["images"]["rgb"], "red block"], {})
        assert dets and {d["label"] for d in dets} == {"red block"}
        ious.append(mask_iou(dets[0]["mask"], truth))
        depth = cam["images"]["depth"]
        valid = depth > 0
        assert 0.0 < 1 - valid.mean() < 0.03  # a few edge pixels have no depth
        error = (depth - exact.depth)[valid & truth]
        assert 0.001 < float(np.std(error)) < 0.004  # about 2 mm at the cube's ~1 m
    assert min(ious) >= 0.5 and np.median(ious) >= 0.85


def test_the_oracle_mode_is_the_exact_render_with_catalog_names():
    api = api_for("robosuite:Lift", 2, mode="oracle")
    cam, exact = observe(api)
    assert np.array_equal(cam["images"]["depth"], exact.depth)
    dets = api.dispatch("segment_text_prompt", [cam["images"]["rgb"], "red block"], {})
    assert [d["label"] for d in dets] == ["cube"]
    assert np.array_equal(dets[0]["mask"], exact.segmentation == [o.label for o in api._objects()].index("cube"))


def test_stacks_cubes_are_both_cube_to_the_model_and_named_by_the_oracle():
    # Stack's catalog names its cubes "red cube" and "green cube"; a model asked for "cube" only says "cube".
    objects = [*get_task("robosuite:Stack").objects, *COMMON_OBJECTS]
    names = [o.label for o in objects]
    seg, depth = scene()
    seg[seg == 0] = names.index("red cube")
    seg[20:35, 80:95], depth[20:35, 80:95] = names.index("green cube"), 1.0
    segmenter = CpuSegmenter(LexicalMatcher())
    oracle = segmenter.segment_text(frame(seg, depth), objects, "cube", mode="oracle")
    assert {d.label for d in oracle} == {"red cube", "green cube"}
    for key in range(10):
        assert {d.label for d in segmenter.segment_text(frame(seg, depth), objects, "cube", key=(key,))} == {"cube"}


def test_depth_noise_can_be_turned_off_and_an_unknown_mode_is_refused():
    api = api_for("robosuite:Lift", 2, depth_noise=False)
    cam, exact = observe(api)
    assert np.array_equal(cam["images"]["depth"], exact.depth)
    with pytest.raises(ValueError, match="perception_mode"):
        api_for("robosuite:Lift", 2, mode="exact")
    with pytest.raises(ValueError, match="perception_mode"):
        EngineSettings(perception_mode="exact")


def test_the_oracle_mode_uses_the_render_even_when_the_default_backend_is_a_model_server():
    api = api_for("robosuite:Lift", 2, mode="oracle", segmenter=HttpSegmenter("http://127.0.0.1:9/segment"))
    assert isinstance(api.segmenter, CpuSegmenter)
    assert isinstance(api_for("robosuite:Lift", 2, segmenter=HttpSegmenter("http://x")).segmenter, HttpSegmenter)


PROBE = """
obs = get_observation(["agentview"])
cam = obs["agentview"]
rgb, depth = cam["images"]["rgb"], cam["images"]["depth"]
dets = segment_text_prompt(rgb, "red block")
print("labels", sorted({d["label"] for d in dets}), [round(d["score"], 4) for d in dets], int(dets[0]["mask"].sum()))
pts = mask_to_world_points(dets[0]["mask"], depth, cam["intrinsics"], cam["pose_mat"])
valid = int(((depth > 0) & dets[0]["mask"]).sum())
print("points", len(pts) == valid, bool(np.isfinite(pts).all()), np.round(np.median(pts, axis=0), 4).tolist())
print("cloud", len(depth_to_point_cloud(depth, cam["intrinsics"])) == int((depth > 0).sum()))
holes = np.argwhere(depth == 0)
if len(holes):
    try:
        pixel_to_world_point([holes[0][1], holes[0][0]], depth, cam["intrinsics"], cam["pose_mat"])
    except ValueError as exc:
        print("hole", "no valid depth" in str(exc))
ys, xs = np.nonzero(dets[0]["mask"])
inside = np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2)
print("segment", [d["label"] for d in segment_point_prompt(rgb, [xs[inside], ys[inside]])])
"""


def test_episodes_replay_exactly_and_record_their_perception_mode():
    spec = get_task("robosuite:Lift")
    runs = [run_episode(spec, PROBE, 9, MemorySink(), EngineSettings(trace=False), None) for _ in range(2)]
    for result in runs:
        assert result.status == st.OK, result.error
        assert result.perception_mode == "realistic"
    assert runs[0].stdout == runs[1].stdout
    lines = runs[0].stdout.splitlines()
    assert lines[0].startswith("labels ['red block']")
    assert lines[1].startswith("points True True") and lines[2] == "cloud True"
    assert "hole True" in lines and lines[-1] == "segment ['segment']"
    oracle = run_episode(spec, PROBE, 9, MemorySink(), EngineSettings(trace=False, perception_mode="oracle"), None)
    assert oracle.perception_mode == "oracle" and oracle.stdout.startswith("labels ['cube']")
    assert oracle.stdout.splitlines()[-1] == "segment ['cube']"
