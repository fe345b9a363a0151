"""Replay a capable model's recorded conversation (../shared/recorded_conversations/nutassembly_search)
through the OpenAI SDK's own HTTP transport, against the real tool runner, the local workbench and the
real simulator, and check what the product sends back to the model: images, program output, clear
failure summaries, motion outcomes, compact call records, budgets.

The model's answers are replayed as recorded, except that refs it named (episode, call and keyframe
ids of the original run) are mapped to the ids this run handed out in the replies the model had just
read, and seed lists are cut to their first seed to keep the test short. A second test replays the
same turns in Anthropic's Messages format through the anthropic SDK (worker/tests/fixtures/
claude_conversation.json: the recorded answers converted to Claude's content blocks).
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import httpx2
import pytest

from worker.agents.llm import ClaudeAgent, OpenAICompatibleAgent
from worker.search.core import SearchSettings
from worker.search.local import LocalWorkbench
from worker.search.rounds import propose_round
from worker.sim.catalog import get_task

RECORDED = Path(__file__).resolve().parents[2].parent / "shared" / "recorded_conversations" / "nutassembly_search"
CLAUDE_FIXTURE = Path(__file__).parent / "fixtures" / "claude_conversation.json"
#: Which recorded answers are replayed, in order: observe the scene (run_candidate), list its calls, read
#: three calls and a keyframe, run a program that moves, list that episode's calls, then propose a skill
#: and submit.
REPLAYED = (1, 2, 3, 5, 6, 16)
TURN_USAGE = {"prompt_tokens": 1000, "completion_tokens": 200, "prompt_tokens_details": {"cached_tokens": 600}}

pytestmark = pytest.mark.skipif(not RECORDED.is_dir(), reason=f"no recorded conversation at {RECORDED}")


def _recorded_answer(number: int) -> dict:
    return json.loads((RECORDED / f"resp_{number:03d}.json").read_text())


class RefMapper:
    """Maps refs the recorded model named onto refs this run's replies contain (the latest first)."""

    def __init__(self):
        self.episodes: list[str] = []
        self.calls: list[str] = []
        self.keyframes: list[str] = []
        self.candidates: list[str] = []

    def read(self, text: str) -> None:
        self.episodes = re.findall(r"\(episode (\S+)\)", text) or self.episodes
        self.candidates = re.findall(r"^candidate (\S+):", text, re.M) or self.candidates
        calls = re.findall(r"\[call (\S+)\]", text)
        if calls:
            self.calls = calls
        frames = [k for group in re.findall(r"keyframes=\[([^\]]*)\]", text) for k in re.findall(r"'([^']+)'", group)]
        if frames:
            self.keyframes = frames

    def arguments(self, name: str, arguments: dict, position: int) -> dict:
        out = dict(arguments)
        if "seeds" in out:
            out["seeds"] = out["seeds"][:1]
        if "episode" in out and self.episodes:
            out["episode"] = self.episodes[0]
        if name == "get_call" and self.calls:
            out["call"] = self.calls[position % len(self.calls)]
        if name == "get_keyframe" and self.keyframes:
            out["keyframe"] = self.keyframes[0]
        if name == "propose_skill" and self.candidates:
            out["before_candidate"] = out["after_candidate"] = self.candidates[0]
        return out


class Replay:
    """An httpx transport answering an SDK's requests with recorded answers: before each answer the tool
    results the request carries are read for refs (:meth:`tool_texts`), then the next recorded answer is
    sent with its tool calls' arguments mapped onto them (:meth:`answer`)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.refs = RefMapper()

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        for text in self.tool_texts(body):
            self.refs.read(text)
        return httpx2.Response(200, json=self.answer(body))

    def mapped(self, calls: list[tuple[str, dict]]) -> list[dict]:
        """Each (tool name, recorded arguments) with refs mapped onto this run's."""
        return [self.refs.arguments(name, arguments, i) for i, (name, arguments) in enumerate(calls)]

    def tool_texts(self, body: dict) -> list[str]:
        raise NotImplementedError

    def answer(self, body: dict) -> dict:
        raise NotImplementedError


class ReplayOpenAI(Replay):
    """Chat-completions requests answered with the recorded answers."""

    def __init__(self, numbers=REPLAYED):
        super().__init__()
        self.queue = list(numbers)

    def tool_texts(self, body: dict) -> list[str]:
        return _tool_texts(body)

    def answer(self, body: dict) -> dict:
        number = self.queue.pop(0)
        answer = _recorded_answer(number)
        recorded = answer.get("tool_calls") or []
        arguments = self.mapped([(call["name"], call["arguments"]) for call in recorded])
        calls = [
            {
                "id": f"call_{number}_{i}",
                "type": "function",
                "function": {"name": call["name"], "arguments": json.dumps(args)},
            }
            for i, (call, args) in enumerate(zip(recorded, arguments))
        ]
        return {
            "id": f"chatcmpl-{number}",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls" if calls else "stop",
                    "message": {"role": "assistant", "content": answer.get("content"), "tool_calls": calls or None},
                }
            ],
            "usage": {**TURN_USAGE, "total_tokens": 1200},
        }


@pytest.fixture(scope="module")
def nut_spec():
    return get_task("robosuite:NutAssemblySquare")


def _tool_texts(request: dict) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def test_replayed_openai_conversation_gets_images_output_and_clear_outcomes(nut_spec):
    import openai

    transport = ReplayOpenAI()
    client = openai.OpenAI(
        max_retries=0,
        base_url="http://127.0.0.1:9/v1",
        api_key="sk-test",
        http_client=httpx2.Client(transport=httpx2.MockTransport(transport)),
    )
    agent = OpenAICompatibleAgent(client=client, model="recorded-model")
    workbench = LocalWorkbench(nut_spec)
    settings = SearchSettings(candidates_per_round=2, max_rounds=2, debug_seeds=tuple(range(101, 111)))
    try:
        proposals = propose_round(agent, workbench, nut_spec, settings, [])
    finally:
        workbench.close()
    requests = transport.requests
    assert len(requests) == len(REPLAYED) and len(proposals) == 2

    first = requests[0]["messages"][1]["content"]
    # The brief states the benchmark's success condition, the scene and the budgets up front.
    assert "Success condition" in first and "0.03 m of the square peg" in first
    assert "segment_text_prompt can name" in first and "experiment episodes" in first and "model turns" in first

    # 1. run_candidate: per-seed verdict, the program's printed output, the final scene frame, budgets.
    observe = _tool_texts(requests[1])[-1]
    assert "seed 101 (episode" in observe and "failure OK" not in observe
    assert "FAILED: the program ended without an error but the task's success check never passed" in observe
    assert "stdout:" in observe and "cart" in observe and "square nut n=" in observe
    assert re.search(r"final scene: keyframe \S+", observe)
    assert "[budget: 11 of 12 experiment episodes left this round; 23 of 24 model turns left" in observe

    # 2. list_calls names keyframes: the perception calls recorded frames and overlays.
    listed = _tool_texts(requests[2])[-1]
    assert re.search(r"segment_text_prompt -> OK \(line \d+\).*keyframes=\['[^']+", listed)

    # 3. get_call is compact (a value already sent comes back as a reference) and get_keyframe's image
    #    reaches the model as an image part.
    call_texts = [t for t in _tool_texts(requests[3]) if t.startswith("{")]
    assert len(call_texts) == 3 and all(len(t) < 6000 for t in call_texts)
    images = [
        part["image_url"]["url"]
        for m in requests[3]["messages"]
        if m["role"] == "user" and isinstance(m["content"], list)
        for part in m["content"]
        if part.get("type") == "image_url"
    ]
    assert images and images[0].startswith("data:image/jpeg;base64,")
    assert base64.b64decode(images[0].split(",", 1)[1])[:3] == b"\xff\xd8\xff"  # a JPEG

    # 4. A program that moves: each motion's outcome is REACHED / NOT_REACHED (or the failure), never a bare OK.
    moved = _tool_texts(requests[5])[-1]
    motions = [line for line in moved.splitlines() if re.match(r"#\d+ (move_|goto_)", line)]
    assert motions, moved[:2000]
    assert all(" -> OK " not in line for line in motions)
    assert any(" -> REACHED " in line or " -> NOT_REACHED " in line for line in motions)
    assert any("reached [" in line or "from the target" in line for line in motions)

    # Notes of this round's experiments are kept for the next round's brief.
    notes = workbench.notes(1)
    assert len(notes) == 2 and "observation only" in notes[0] and "printed" in notes[0]


def test_replayed_openai_conversation_counts_tokens_per_turn(nut_spec):
    """Usage adds up over the turns: cached prompt tokens are billed as cache reads, not as input."""
    import openai

    transport = ReplayOpenAI(numbers=(16,))
    client = openai.OpenAI(
        max_retries=0,
        base_url="http://127.0.0.1:9/v1",
        api_key="sk-test",
        http_client=httpx2.Client(transport=httpx2.MockTransport(transport)),
    )
    workbench = LocalWorkbench(nut_spec, keyframes=False)
    settings = SearchSettings(candidates_per_round=2, debug_seeds=tuple(range(101, 111)))
    propose_round(OpenAICompatibleAgent(client=client, model="recorded-model"), workbench, nut_spec, settings, [])
    usage = workbench.usage[-1]
    assert (usage.turns, usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (1, 400, 600, 200)
    assert usage.tool_calls == ["propose_skill", "submit_candidates"]
    proposal = workbench.proposed_skills[-1]
    assert proposal["name"] == "hover-wrist-camera-over-target-and-verify-grasp"


class ReplayClaude(Replay):
    """Messages API requests answered with the Claude-format fixture's answers."""

    def __init__(self, answers: list[dict]):
        super().__init__()
        self.answers = list(answers)

    def tool_texts(self, body: dict) -> list[str]:
        return [
            part["text"]
            for message in body["messages"]
            for block in (message["content"] if isinstance(message["content"], list) else [])
            if block.get("type") == "tool_result"
            for part in block["content"]
            if part.get("type") == "text"
        ]

    def answer(self, body: dict) -> dict:
        answer = self.answers.pop(0)
        uses = [block for block in answer["content"] if block["type"] == "tool_use"]
        inputs = iter(self.mapped([(block["name"], block["input"]) for block in uses]))
        content = [
            {**block, "input": next(inputs)} if block["type"] == "tool_use" else block for block in answer["content"]
        ]
        return {
            "id": answer["id"],
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": answer["stop_reason"],
            "stop_sequence": None,
            "usage": answer["usage"],
        }


def test_replayed_claude_conversation_gets_images_and_output(nut_spec):
    import anthropic

    fixture = json.loads(CLAUDE_FIXTURE.read_text())
    transport = ReplayClaude(fixture["responses"])
    client = anthropic.Anthropic(
        max_retries=0, api_key="sk-ant-test", http_client=httpx2.Client(transport=httpx2.MockTransport(transport))
    )
    workbench = LocalWorkbench(nut_spec)
    settings = SearchSettings(candidates_per_round=2, debug_seeds=tuple(range(101, 111)))
    try:
        proposals = propose_round(
            ClaudeAgent(client=client, model="claude-opus-5-5"), workbench, nut_spec, settings, []
        )
    finally:
        workbench.close()
    assert len(proposals) == 2
    requests = transport.requests
    # The system prompt is a cached block; the first tool result carries the program's output.
    assert requests[0]["system"][0]["cache_control"] == {"type": "ephemeral"}
    first_result = requests[1]["messages"][-1]["content"][0]["content"][0]["text"]
    assert "stdout:" in first_result and "final scene: keyframe" in first_result
    # get_keyframe's answer is an image block inside the tool result.
    blocks = [
        part
        for message in requests[3]["messages"]
        if message["role"] == "user" and isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
        for part in block["content"]
    ]
    assert any(p["type"] == "image" and p["source"]["media_type"] == "image/jpeg" for p in blocks)
    usage = workbench.usage[-1]
    expected = [a["usage"] for a in fixture["responses"]]
    assert usage.input_tokens == sum(u["input_tokens"] for u in expected)
    assert usage.cache_read_tokens == sum(u.get("cache_read_input_tokens", 0) for u in expected)
    assert usage.cache_write_tokens == sum(u.get("cache_creation_input_tokens", 0) for u in expected)
    assert usage.cost_usd > 0
