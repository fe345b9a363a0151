"""The segmenters score prompts against visible objects and return only masks, boxes, scores, labels."""

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


def test_it_returns_masks_boxes_scores_best_first_and_no_poses():
    dets = CpuSegmenter().segment_text(frame(scene()), OBJECTS, "red cube")
    assert [d.label for d in dets] == ["cube"]
    d = dets[0].as_dict()
    assert set(d) == {"mask", "box", "score", "label"}
    assert d["mask"].sum() == 36 and d["box"] == [30.0, 30.0, 35.0, 35.0]


def test_small_masks_score_lower_than_large_ones():
    small = CpuSegmenter().segment_text(frame(scene()), OBJECTS, "cube")[0].score
    big = scene()
    big[20:40, 20:40] = 0
    large = CpuSegmenter().segment_text(frame(big), OBJECTS, "cube")[0].score
    assert small < large


def test_a_vague_prompt_can_match_more_than_one_object():
    labels = {d.label for d in CpuSegmenter().segment_text(frame(scene()), OBJECTS, "block on the table")}
    assert labels == {"cube", "table"}


def test_nothing_visible_or_nothing_matching_gives_an_empty_list():
    seg = scene()
    seg[seg == 0] = 1  # the cube is fully hidden
    assert CpuSegmenter().segment_text(frame(seg), OBJECTS, "cube") == []
    assert CpuSegmenter().segment_text(frame(scene()), OBJECTS, "banana") == []


def test_point_prompts_pick_the_object_under_each_point():
    dets = CpuSegmenter().segment_points(frame(scene()), OBJECTS, [(32, 32), (5, 5), (50, 20)])
    assert [d.label for d in dets] == ["cube", "gripper"]


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
