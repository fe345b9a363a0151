"""The segmenters score prompts against visible objects and return only masks, boxes, scores, labels.

The exact masks and catalog names are the "oracle" perception mode, asked for explicitly here; the
default "realistic" mode's noise is tested in test_perception_realistic."""

import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest
from PIL import Image

from worker.robot.segmenter import CpuSegmenter, EmbeddingMatcher, HttpSegmenter, LexicalMatcher
from worker.sim.base import CameraFrame
from worker.sim.catalog import COMMON_OBJECTS, SceneObject

CUBE = SceneObject("cube", ("cube", "red cube", "block", "red block"), ("cube",), "red")
SOUP = SceneObject("alphabet soup", ("alphabet soup can", "soup", "can"), ("alphabet_soup_1_",))
OBJECTS = [CUBE, *COMMON_OBJECTS]


def frame(seg):
    rgb = np.zeros(seg.shape + (3,), dtype=np.uint8)
    rgb[seg == 0] = (200, 30, 30)
    return CameraFrame("agentview", rgb, None, seg, np.eye(3), np.eye(4))


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


def test_the_oracle_returns_exact_masks_boxes_scores_and_catalog_names_and_no_poses():
    dets = CpuSegmenter().segment_text(frame(scene()), OBJECTS, "red cube", mode="oracle")
    assert [d.label for d in dets] == ["cube"]
    d = dets[0].as_dict()
    assert set(d) == {"mask", "box", "score", "label"}
    assert d["mask"].sum() == 36 and d["box"] == [30.0, 30.0, 35.0, 35.0]


def test_the_default_mode_labels_detections_with_the_prompt_not_the_catalog_name():
    seg = scene()
    seg[20:40, 20:40] = 0
    dets = CpuSegmenter().segment_text(frame(seg), OBJECTS, "red  cube ")
    assert [d.label for d in dets] == ["red cube"]
    assert set(dets[0].as_dict()) == {"mask", "box", "score", "label"}
    assert dets[0].mask[20:40, 20:40].mean() >= 0.5  # on the cube, give or take its boundary


def test_an_unknown_perception_mode_is_refused():
    with pytest.raises(ValueError, match="perception_mode"):
        CpuSegmenter().segment_text(frame(scene()), OBJECTS, "cube", mode="exact")


@pytest.mark.parametrize("mode", ["oracle", "realistic"])
def test_small_masks_score_lower_than_large_ones(mode):
    big = scene()
    big[20:40, 20:40] = 0
    small, large = [], []
    for key in range(20):  # realistic scores vary with the mask noise: compare the averages
        small += [d.score for d in CpuSegmenter().segment_text(frame(scene()), OBJECTS, "cube", mode=mode, key=(key,))]
        large += [d.score for d in CpuSegmenter().segment_text(frame(big), OBJECTS, "cube", mode=mode, key=(key,))]
    assert small and np.mean(small) < np.mean(large)


def test_a_vague_prompt_can_match_more_than_one_object():
    dets = CpuSegmenter().segment_text(frame(scene()), OBJECTS, "block on the table", mode="oracle")
    assert {d.label for d in dets} == {"cube", "table"}


@pytest.mark.parametrize("mode", ["oracle", "realistic"])
def test_nothing_visible_or_nothing_matching_gives_an_empty_list(mode):
    seg = scene()
    seg[seg == 0] = 1  # the cube is fully hidden
    assert CpuSegmenter().segment_text(frame(seg), OBJECTS, "cube", mode=mode) == []
    for key in range(50):  # a prompt naming nothing visible never brings false positives either
        assert CpuSegmenter().segment_text(frame(scene()), OBJECTS, "banana", mode=mode, key=(key,)) == []


def test_oracle_point_prompts_name_the_object_under_each_point():
    dets = CpuSegmenter().segment_points(frame(scene()), OBJECTS, [(32, 32), (5, 5), (50, 20)], mode="oracle")
    assert [d.label for d in dets] == ["cube", "gripper"]
    assert dets[0].mask.sum() == 36


def test_realistic_point_prompts_give_the_segment_under_each_point_without_a_name():
    dets = CpuSegmenter().segment_points(frame(scene()), OBJECTS, [(32, 32), (5, 5), (50, 20), (33, 33)])
    assert [d.label for d in dets] == ["segment", "segment"]  # background gives nothing, one per segment
    assert dets[0].mask[30:36, 30:36].mean() >= 0.5 and dets[1].mask[:10, :10].mean() >= 0.5


def test_sentence_embeddings_match_paraphrases_the_lexical_matcher_misses():
    matcher = EmbeddingMatcher()
    objects = [SOUP, CUBE, *COMMON_OBJECTS]
    soup, cube, table = matcher.scores("tin of soup", objects)[:3]
    assert LexicalMatcher().score("tin of soup", SOUP) < 1.0
    assert soup > 0.3 and soup > cube and soup > table
    assert matcher.scores("red cube", objects)[1] == 1.0  # exact names keep full confidence
    assert max(matcher.scores("quantum chromodynamics", objects)) < 0.3


class _FakeSam(BaseHTTPRequestHandler):
    """Answers like a SAM-style server: the mask of the red pixels for any text prompt."""

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        rgb = np.asarray(Image.open(io.BytesIO(base64.b64decode(request["image"]))))
        mask = (rgb[..., 0] > 150) & (rgb[..., 1] < 80)
        buf = io.BytesIO()
        Image.fromarray((mask * 255).astype(np.uint8)).save(buf, format="PNG")
        detection = {
            "mask": base64.b64encode(buf.getvalue()).decode(),
            "score": 0.91,
            "label": request.get("text", "point"),
        }
        body = json.dumps({"detections": [detection]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def sam_server():
    server = HTTPServer(("127.0.0.1", 0), _FakeSam)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/segment"
    server.shutdown()


def test_the_http_backend_sends_the_image_and_decodes_masks(sam_server):
    dets = HttpSegmenter(sam_server).segment_text(frame(scene()), OBJECTS, "red thing")
    assert len(dets) == 1 and dets[0].label == "red thing" and dets[0].score == 0.91
    assert dets[0].mask.sum() == 36 and dets[0].box == [30.0, 30.0, 35.0, 35.0]


def test_the_http_backend_reports_an_unreachable_server():
    with pytest.raises(RuntimeError, match="segmentation server"):
        HttpSegmenter("http://127.0.0.1:9/segment", timeout=2).segment_text(frame(scene()), OBJECTS, "cube")
