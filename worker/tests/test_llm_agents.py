"""The Claude and OpenAI-compatible agents against recorded API responses, through each SDK's own HTTP
transport (an httpx2 MockTransport inside the SDK client): the requests they send are checked too."""

import io
import json
from pathlib import Path

import anthropic
import httpx2
import numpy as np
import openai
import pytest
from PIL import Image

from worker.agents.llm import AgentError, ClaudeAgent, OpenAICompatibleAgent
from worker.agents.tools import TOOLS
from worker.search.core import Brief, CallSummary, CandidateRecord, EpisodeSummary

FIXTURES = Path(__file__).parent / "fixtures" / "llm"


class Recorder:
    """Serves recorded responses in order and keeps every request's JSON body."""

    def __init__(self, name, status=200):
        self.responses = json.loads((FIXTURES / name).read_text())
        self.status = status
        self.requests = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(
            {"url": str(request.url), "headers": dict(request.headers), "json": json.loads(request.content)}
        )
        if self.status != 200:
            return httpx2.Response(
                self.status, json={"type": "error", "error": {"type": "api_error", "message": "overloaded"}}
            )
        return httpx2.Response(200, json=self.responses[len(self.requests) - 1])


class FakeWorkbench:
    def __init__(self):
        buf = io.BytesIO()
        Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(buf, format="JPEG")
        self.jpeg = buf.getvalue()
        self.usage, self.skills_proposed = [], []
        self.blocked = CallSummary(
            "k7",
            7,
            "move_to_pose",
            "PLANNING_ERROR",
            64,
            "the target configuration is in occupied space: arm0 right finger would meet occupied space at "
            "[0.031, 0.087, 0.871] m, seen by camera agentview, 0.043 m above the support surface",
            keyframes=["kf-blocked"],
        )

    def calls(self, episode_ref, status=None, primitive=None):
        assert episode_ref == "e2"
        return [self.blocked] if status in (None, "PLANNING_ERROR") else []

    def call(self, call_ref):
        return {"seq": 7, "primitive": "move_to_pose", "status": "PLANNING_ERROR"}

    def keyframe(self, ref):
        assert ref == "kf-blocked"
        return self.jpeg

    def skills(self, query, k=5):
        return []

    def skill(self, ref):
        raise KeyError(ref)

    def propose_skill(self, fields):
        self.skills_proposed.append(fields)

    def record_usage(self, usage):
        self.usage.append(usage)

    def evaluate(self, *args, **kwargs):
        raise AssertionError("the recorded conversation runs no experiments")


def brief():
    failed = EpisodeSummary(
        107, False, "EXCEPTION", "RuntimeError: missed the red cube", 71, "e2", implicated=[FakeWorkbench().blocked]
    )
    best = CandidateRecord("c1", 0, 0, "start from the reference program", "print('x')", episodes=[failed])
    return Brief(
        "robosuite:Stack",
        "Stack the red cube on top of the green cube.",
        1,
        ("agentview",),
        1,
        2,
        tuple(range(101, 126)),
        [best],
        [],
        [{"id": 3, "name": "Top-face localisation", "repair_strategy": "use the top face"}],
    )


def test_claude_agent_runs_the_tool_loop_through_the_sdk():
    recorder = Recorder("claude_round.json")
    client = anthropic.Anthropic(
        api_key="sk-test", max_retries=0, http_client=httpx2.Client(transport=httpx2.MockTransport(recorder))
    )
    workbench = FakeWorkbench()
    proposals = ClaudeAgent(client=client).propose(brief(), workbench)

    assert [p.hypothesis for p in proposals] == [
        "rotate the grasp 90 degrees when a finger would touch the neighbour",
        "approach from higher so the planner can route around",
    ]
    assert proposals[0].parent == "c1"
    first, second, third = (r["json"] for r in recorder.requests)
    assert recorder.requests[0]["url"].endswith("/v1/messages")
    assert first["model"] == "claude-opus-5-5"
    # Tools: every tool, each with a JSON schema.
    assert [t["name"] for t in first["tools"]] == [t["name"] for t in TOOLS]
    assert all(t["input_schema"]["type"] == "object" for t in first["tools"])
    # The stable prefix is cached: rules + API reference (from the docstrings) + retrieved skills.
    system = first["system"][0]
    assert system["cache_control"] == {"type": "ephemeral"}
    assert "### solve_ik(position, quaternion_wxyz)" in system["text"] and "Top-face localisation" in system["text"]
    assert "out of reach by design" in system["text"]
    # The round's context: the survivor's code, failure and implicated call with its id.
    task_text = first["messages"][0]["content"][0]["text"]
    assert "Stack the red cube" in task_text and "[call k7]" in task_text and "Submit 2 candidate programs" in task_text
    # Exactly one moving cache breakpoint, on the newest message.
    marked = [b for m in third["messages"] for b in m["content"] if isinstance(b, dict) and "cache_control" in b]
    assert len(marked) == 1 and third["messages"][-1]["content"][-1] is not None
    # The keyframe went back as an image block inside the tool result.
    tool_result = third["messages"][-1]["content"][0]
    assert tool_result["type"] == "tool_result" and tool_result["tool_use_id"] == "toolu_02"
    image = tool_result["content"][1]
    assert image["type"] == "image" and image["source"]["media_type"] == "image/jpeg"
    assert image["source"]["data"] == __import__("base64").b64encode(workbench.jpeg).decode()
    # The list_calls result reached the model.
    assert "move_to_pose -> PLANNING_ERROR" in second["messages"][-1]["content"][0]["content"][0]["text"]
    # Usage and cost per agent call.
    (usage,) = workbench.usage
    assert (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_write_tokens,
        usage.cache_read_tokens,
        usage.turns,
    ) == (628, 573, 5540, 11244, 3)
    expected = (628 * 4.0 + 5540 * 5.0 + 11244 * 0.2 + 573 * 20.0) / 1e6
    assert usage.cost_usd == pytest.approx(expected, abs=1e-6)  # stored to the micro-dollar
    assert usage.tool_calls == ["list_calls", "get_keyframe", "submit_candidates", "propose_skill"]
    # A proposed skill goes to the coordinator with its provenance resolved.
    (skill,) = workbench.skills_proposed
    assert skill["provenance"]["claimed_seeds"] == [107] and skill["provenance"]["before_program"] == "print('x')"


def test_claude_agent_reports_a_failing_service_and_still_records_usage():
    recorder = Recorder("claude_round.json", status=529)
    client = anthropic.Anthropic(
        api_key="sk-test", max_retries=0, http_client=httpx2.Client(transport=httpx2.MockTransport(recorder))
    )
    workbench = FakeWorkbench()
    with pytest.raises(AgentError, match="Claude request failed"):
        ClaudeAgent(client=client).propose(brief(), workbench)
    assert workbench.usage[0].error.startswith("Claude request failed")


def test_openai_compatible_agent_runs_the_same_tools_through_the_sdk():
    recorder = Recorder("openai_round.json")
    client = openai.OpenAI(
        base_url="http://vllm.local:8000/v1",
        api_key="none",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(recorder)),
    )
    workbench = FakeWorkbench()
    proposals = OpenAICompatibleAgent(client=client, model="qwen3-coder-30b").propose(brief(), workbench)
    assert [p.hypothesis for p in proposals] == ["widen the grasp search"]
    first, second = (r["json"] for r in recorder.requests)
    assert recorder.requests[0]["url"] == "http://vllm.local:8000/v1/chat/completions"
    assert first["model"] == "qwen3-coder-30b"
    assert [t["function"]["name"] for t in first["tools"]] == [t["name"] for t in TOOLS]
    assert first["messages"][0]["role"] == "system" and "### move_to_pose" in first["messages"][0]["content"]
    tool_messages = [m for m in second["messages"] if m["role"] == "tool"]
    assert {m["tool_call_id"] for m in tool_messages} == {"call_1", "call_2"}
    image_message = second["messages"][-1]
    assert image_message["role"] == "user" and image_message["content"][1]["image_url"]["url"].startswith(
        "data:image/jpeg;base64,"
    )
    (usage,) = workbench.usage
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (6100 + 7300 - 6016, 6016, 192)
    assert usage.cost_usd == 0.0  # a local model has no price unless ASPIRE_MODEL_PRICES gives one


def test_candidates_with_the_same_hypothesis_are_refused_and_the_model_is_told():
    from worker.agents.tools import ToolRunner

    runner = ToolRunner(FakeWorkbench(), 1, (101,), 4)
    outcome = runner.run(
        "submit_candidates", {"candidates": [{"hypothesis": "h", "code": "x=1"}, {"hypothesis": "H ", "code": "x=2"}]}
    )
    assert outcome.is_error and "share a hypothesis" in outcome.text and runner.submitted is None
    outcome = runner.run("run_candidate", {"code": "x=1", "seeds": [5]})
    assert outcome.is_error and "debug seeds" in outcome.text


def test_round_zero_asks_the_model_to_observe_one_debug_seed_before_writing():
    from dataclasses import replace

    from worker.agents.prompts import round_message

    first_round = replace(brief(), round=0, survivors=[], starter="obs = get_observation()")
    text = round_message(first_round, experiment_budget=12)
    assert "Observe the scene first" in text and "seed 101" in text and "get_keyframe" in text
    assert "obs = get_observation()" in text
    assert "Observe the scene first" not in round_message(brief(), experiment_budget=12)
