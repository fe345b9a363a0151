"""The CPU segmenter scores prompts against visible objects and returns only masks, boxes and scores."""

import numpy as np

from worker.robot.segmenter import CpuSegmenter, LexicalMatcher
from worker.sim.catalog import COMMON_OBJECTS, SceneObject

CUBE = SceneObject("cube", ("cube", "red cube", "block", "red block"), ("cube",), "red")
OBJECTS = [CUBE, *COMMON_OBJECTS]


def scene():
    seg = np.full((64, 64), -1, dtype=np.int32)
    seg[40:, :] = 1  # table
    seg[30:36, 30:36] = 0  # cube, 36 pixels
    seg[:10, :10] = 2  # gripper
    return seg


def test_exact_names_and_synonyms_match_best():
    m = LexicalMatcher()
    assert m.score("red cube", CUBE) == 1.0
    assert m.score("the block", CUBE) == 1.0
    assert 0.3 <= m.score("small red cube", CUBE) < 1.0
    assert m.score("banana", CUBE) == 0.0


def test_it_returns_masks_boxes_scores_best_first_and_no_poses():
    dets = CpuSegmenter().segment_text(scene(), OBJECTS, "red cube")
    assert [d.label for d in dets] == ["cube"]
    d = dets[0].as_dict()
    assert set(d) == {"mask", "box", "score", "label"}
    assert d["mask"].sum() == 36 and d["box"] == [30.0, 30.0, 35.0, 35.0]


def test_small_masks_score_lower_than_large_ones():
    small = CpuSegmenter().segment_text(scene(), OBJECTS, "cube")[0].score
    big = scene()
    big[20:40, 20:40] = 0
    large = CpuSegmenter().segment_text(big, OBJECTS, "cube")[0].score
    assert small < large


def test_a_vague_prompt_can_match_more_than_one_object():
    labels = {d.label for d in CpuSegmenter().segment_text(scene(), OBJECTS, "block on the table")}
    assert labels == {"cube", "table"}


def test_nothing_visible_or_nothing_matching_gives_an_empty_list():
    seg = scene()
    seg[seg == 0] = 1  # the cube is fully hidden
    assert CpuSegmenter().segment_text(seg, OBJECTS, "cube") == []
    assert CpuSegmenter().segment_text(scene(), OBJECTS, "banana") == []


def test_point_prompts_pick_the_object_under_each_point():
    dets = CpuSegmenter().segment_points(scene(), OBJECTS, [(32, 32), (5, 5), (50, 20)])
    assert [d.label for d in dets] == ["cube", "gripper"]
