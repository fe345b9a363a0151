"""Language-model agents: Claude through the ``anthropic`` SDK, and any OpenAI-compatible chat endpoint
(vLLM, ollama, ...) through the ``openai`` SDK. Both run the same tool-use loop for a round: the model
reads traces and keyframes, may test programs on a few seeds, and ends by calling submit_candidates.

Claude requests put a cache breakpoint on the system prompt (rules, API reference, skills: the stable
prefix shared by every round of a task) and one on the newest message, so each turn of the loop reads
the conversation so far from the cache instead of paying for it again.
"""

from __future__ import annotations

import json
import time

from worker.search.core import Brief, CandidateRecord, Proposal

from .pricing import DEFAULT_CLAUDE_MODEL, AgentUsage
from .prompts import round_message, system_prompt
from .tools import TOOLS, ToolRunner, openai_tools

MAX_TURNS = 24
EXPERIMENT_BUDGET = 12  # episodes run_candidate may spend per round
MAX_TOKENS = 8000


class AgentError(RuntimeError):
    """The model service failed or the model did not submit candidates."""


class _ToolLoopAgent:
    backend = ""

    def __init__(self, model: str, max_turns: int = MAX_TURNS, experiment_budget: int = EXPERIMENT_BUDGET):
        self.model = model
        self.max_turns = max_turns
        self.experiment_budget = experiment_budget

    def propose(self, brief: Brief, workbench) -> list[Proposal]:
        """Run one round's conversation; returns the submitted candidates (raises AgentError if none)."""
        runner = ToolRunner(workbench, brief.round, brief.debug_seeds, self.experiment_budget, max_turns=self.max_turns)
        runner.candidates_by_ref.update({str(c.ref): c for c in brief.survivors})
        usage = AgentUsage(self.backend, self.model, "propose", brief.round)
        started = time.monotonic()
        try:
            self._conversation(brief, runner, usage)
        except AgentError as exc:
            usage.error = str(exc)
            raise
        finally:
            usage.duration_s = round(time.monotonic() - started, 2)
            usage.tool_calls = list(runner.names)
            workbench.record_usage(usage)
            for fields in runner.proposed_skills:
                workbench.propose_skill(fields)
        return runner.submitted

    def findings(self, first: CandidateRecord, best: CandidateRecord, everything: list[CandidateRecord]) -> list[dict]:
        """Nothing to distil after the search: the model proposes skills with its propose_skill tool during
        the rounds, and they reach the workbench then."""
        return []

    def _conversation(self, brief, runner, usage):
        raise NotImplementedError

    def _record_turn(self, runner: ToolRunner, sent: list[dict], response: dict, tools: list[dict], usage: dict):
        """Hand one model turn to the workbench's conversation log when it keeps one (``record_turn``):
        ``sent`` the messages added to the conversation since the previous request (the system prompt on
        the first turn), ``response`` the model's answer as the SDK returned it, ``tools`` one entry per
        tool call ({"name", "arguments", "text", "is_error", "keyframes"}), ``usage`` this turn's tokens.
        Images inside ``sent`` are replaced by {"keyframe": ref} so a log never holds image bytes."""
        record = getattr(runner.workbench, "record_turn", None)
        if record is not None:
            record(
                round=runner.round,
                turn=runner.turn,
                backend=self.backend,
                model=self.model,
                sent=sent,
                response=response,
                tools=tools,
                usage=usage,
            )


class ClaudeAgent(_ToolLoopAgent):
    backend = "claude"

    def __init__(self, client=None, model: str = DEFAULT_CLAUDE_MODEL, **kwargs):
        super().__init__(model, **kwargs)
        if client is None:
            import anthropic

            client = anthropic.Anthropic()
        self.client = client

    def _conversation(self, brief: Brief, runner: ToolRunner, usage: AgentUsage) -> None:
        import anthropic

        system = [
            {"type": "text", "text": system_prompt(brief.arms, brief.skills), "cache_control": {"type": "ephemeral"}}
        ]
        messages: list[dict] = [
            {
                "role": "user",
                "content": [{"type": "text", "text": round_message(brief, self.experiment_budget, self.max_turns)}],
            }
        ]
        logged = 0  # messages already handed to the conversation log
        for _ in range(self.max_turns):
            runner.turn += 1
            _mark_newest(messages)
            sent = ([{"role": "system", "content": system}] if logged == 0 else []) + messages[logged:]
            try:
                response = self.client.messages.create(
                    model=self.model, max_tokens=MAX_TOKENS, system=system, tools=TOOLS, messages=messages
                )
            except anthropic.APIError as exc:
                raise AgentError(f"Claude request failed: {exc}") from None
            usage.turns += 1
            u = response.usage
            turn_usage = {
                "input_tokens": u.input_tokens or 0,
                "output_tokens": u.output_tokens or 0,
                "cache_read_tokens": getattr(u, "cache_read_input_tokens", 0) or 0,
                "cache_write_tokens": getattr(u, "cache_creation_input_tokens", 0) or 0,
            }
            for key, value in turn_usage.items():
                setattr(usage, key, getattr(usage, key) + value)
            logged = len(messages) + 1  # the answer appended next is logged as the response
            messages.append(
                {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in response.content]}
            )
            calls = [b for b in response.content if b.type == "tool_use"]
            tool_log: list[dict] = []
            if not calls:
                self._record_turn(runner, _without_images(sent), response.model_dump(), tool_log, turn_usage)
                messages.append(
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": "Submit your candidates with submit_candidates."}],
                    }
                )
                continue
            results = []
            for call in calls:
                outcome = runner.run(call.name, dict(call.input))
                tool_log.append(_tool_entry(call.name, dict(call.input), outcome))
                content = [{"type": "text", "text": outcome.text}]
                if outcome.image_jpeg:
                    content.append(
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/jpeg", "data": outcome.image_b64()},
                        }
                    )
                results.append(
                    {
                        "type": "tool_result",
                        "tool_use_id": call.id,
                        "content": content,
                        **({"is_error": True} if outcome.is_error else {}),
                    }
                )
            messages.append({"role": "user", "content": results})
            self._record_turn(runner, _without_images(sent), response.model_dump(), tool_log, turn_usage)
            if runner.submitted:
                return
        raise AgentError(f"Claude did not submit candidates within {self.max_turns} turns")


def _mark_newest(messages: list[dict]) -> None:
    """Keep exactly one message cache breakpoint, on the newest user message (max four per request)."""
    for message in messages:
        for block in message["content"] if isinstance(message["content"], list) else []:
            if isinstance(block, dict):
                block.pop("cache_control", None)
    last = messages[-1]["content"][-1]
    last["cache_control"] = {"type": "ephemeral"}


class OpenAICompatibleAgent(_ToolLoopAgent):
    backend = "openai"

    def __init__(self, client=None, model: str = "", base_url: str | None = None, api_key: str | None = None, **kwargs):
        super().__init__(model, **kwargs)
        if client is None:
            import openai

            client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed")
        self.client = client

    def _conversation(self, brief: Brief, runner: ToolRunner, usage: AgentUsage) -> None:
        import openai

        messages: list[dict] = [
            {"role": "system", "content": system_prompt(brief.arms, brief.skills)},
            {"role": "user", "content": round_message(brief, self.experiment_budget, self.max_turns)},
        ]
        logged = 0
        for _ in range(self.max_turns):
            runner.turn += 1
            sent = messages[logged:]
            try:
                response = self.client.chat.completions.create(
                    model=self.model, messages=messages, tools=openai_tools(), max_tokens=MAX_TOKENS
                )
            except openai.OpenAIError as exc:
                raise AgentError(f"OpenAI-compatible request failed: {exc}") from None
            usage.turns += 1
            turn_usage = {"input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0, "cache_write_tokens": 0}
            if response.usage:
                cached = getattr(getattr(response.usage, "prompt_tokens_details", None), "cached_tokens", 0) or 0
                turn_usage["input_tokens"] = (response.usage.prompt_tokens or 0) - cached
                turn_usage["cache_read_tokens"] = cached
                turn_usage["output_tokens"] = response.usage.completion_tokens or 0
            for key, value in turn_usage.items():
                setattr(usage, key, getattr(usage, key) + value)
            logged = len(messages) + 1  # the answer appended next is logged as the response
            message = response.choices[0].message
            messages.append(message.model_dump(exclude_none=True))
            tool_log: list[dict] = []
            if not message.tool_calls:
                self._record_turn(runner, _without_images(sent), response.model_dump(), tool_log, turn_usage)
                messages.append({"role": "user", "content": "Submit your candidates with the submit_candidates tool."})
                continue
            images = []
            for call in message.tool_calls:
                try:
                    arguments = json.loads(call.function.arguments or "{}")
                except json.JSONDecodeError as exc:
                    outcome_text = f"arguments are not JSON: {exc}"
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": outcome_text})
                    tool_log.append(
                        {
                            "name": call.function.name,
                            "arguments": call.function.arguments,
                            "text": outcome_text,
                            "is_error": True,
                            "keyframes": [],
                        }
                    )
                    continue
                outcome = runner.run(call.function.name, arguments)
                tool_log.append(_tool_entry(call.function.name, arguments, outcome))
                messages.append({"role": "tool", "tool_call_id": call.id, "content": outcome.text})
                if outcome.image_jpeg:
                    images.append(
                        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{outcome.image_b64()}"}}
                    )
            if images:
                # Chat-completions tool messages carry text only; the frames follow as a user message.
                messages.append(
                    {"role": "user", "content": [{"type": "text", "text": "Requested keyframes:"}] + images}
                )
            self._record_turn(runner, _without_images(sent), response.model_dump(), tool_log, turn_usage)
            if runner.submitted:
                return
        raise AgentError(f"the model did not submit candidates within {self.max_turns} turns")


def _tool_entry(name: str, arguments: dict, outcome) -> dict:
    return {
        "name": name,
        "arguments": arguments,
        "text": outcome.text,
        "is_error": outcome.is_error,
        "keyframes": list(outcome.keyframes),
    }


def _without_images(messages: list[dict]) -> list[dict]:
    """A copy of ``messages`` with every base64 image replaced by a short placeholder (images are stored
    once, as keyframes; tool entries name their refs)."""

    def clean(value):
        if isinstance(value, dict):
            if value.get("type") == "image" and isinstance(value.get("source"), dict):
                return {"type": "image", "omitted": "base64 image (see the tool entry's keyframes)"}
            if value.get("type") == "image_url":
                return {"type": "image_url", "omitted": "base64 image (see the tool entry's keyframes)"}
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return clean(messages)
