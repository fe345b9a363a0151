"""Agents' conversations, turn by turn: what the built-in language-model agents (worker.agents.llm) hand to
DjangoWorkbench.record_turn, stored as AgentTurn rows, and what the conversation pages and the JSON
download show of them.

Every turn keeps a compact log: the model's own text and each tool it called (name, a short summary of
the arguments, the first 2000 characters of the result, whether it failed, the keyframes it showed), its
tokens and cost (worker.agents.pricing). When the experiment's ``record`` setting is on
(Run.settings["record"]) the messages sent and the SDK's response are kept in full as well, after
:func:`strip_secrets`, so the conversation can be replayed and shared. Recording never breaks a round:
a turn that cannot be stored is logged and the agent carries on.
"""

from __future__ import annotations

import json
import logging
import re

from django.db import transaction
from django.urls import reverse

from runs.models import USAGE_FIELDS, AgentCall, AgentTurn, Keyframe
from worker.agents.pricing import AgentUsage

log = logging.getLogger(__name__)

STRIPPED = "[stripped]"
RESULT_CHARS = 2000  # of a tool's result, and of the model's text, in the compact log
ARGUMENT_CHARS = 200  # of each argument in the compact log's summary
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
#: The JSON download's format name (see conversation_json).
FORMAT = "aspire.conversation/1"

#: Field and header names whose values are secrets, whatever they hold.
_SECRET_NAME = re.compile(r"(api[-_]?key|authorization|x[-_]api[-_]key|secret|password)", re.IGNORECASE)
#: Strings that look like API keys or bearer credentials, wherever they appear.
_SECRET_VALUE = re.compile(
    r"\bsk-ant-[A-Za-z0-9_\-]{8,}"  # Anthropic
    r"|\bsk-[A-Za-z0-9_\-]{16,}"  # OpenAI and compatible servers (sk-..., sk-proj-...)
    r"|\bBearer\s+[A-Za-z0-9._~+/=\-]{8,}",  # an Authorization header's value
)


def strip_secrets(value):
    """A copy of ``value`` (JSON-like) with every field or header named like an API key or authorization
    replaced by "[stripped]", and every substring that looks like a key (``sk-...``, ``sk-ant-...``,
    ``Bearer ...``) too."""
    if isinstance(value, dict):
        return {
            k: STRIPPED if isinstance(k, str) and _SECRET_NAME.search(k) and v not in (None, "") else strip_secrets(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [strip_secrets(v) for v in value]
    if isinstance(value, str):
        return _SECRET_VALUE.sub(STRIPPED, value)
    return value


def _jsonable(value):
    """``value`` as plain JSON types (SDK dumps may hold other objects; they become strings)."""
    return json.loads(json.dumps(value, default=str))


def _short(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"


def _summarise(value, limit: int):
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + f"… ({value.count(chr(10)) + 1} lines)"
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):  # e.g. submitted candidates
        items = [{str(k): _summarise(v, limit // 2) for k, v in item.items()} for item in value[:8]]
        return items + ([f"… {len(value) - 8} more"] if len(value) > 8 else [])
    return _short(json.dumps(value, default=str), limit)


def argument_summary(arguments) -> dict | str:
    """A tool call's arguments, each cut short: long strings (programs) to their first characters and their
    line count, lists of objects (submitted candidates) to their first eight with their fields cut shorter,
    other lists and objects to their JSON's first characters."""
    if not isinstance(arguments, dict):
        return _short(strip_secrets(str(arguments)), ARGUMENT_CHARS)
    return {str(key): _summarise(value, ARGUMENT_CHARS) for key, value in strip_secrets(arguments).items()}


def response_text(backend: str, response) -> str:
    """The model's own text in a response dump (Anthropic: text blocks; chat completions: the message)."""
    if not isinstance(response, dict):
        return ""
    if backend == "claude" or "content" in response and isinstance(response.get("content"), list):
        return "\n\n".join(
            b.get("text", "") for b in response.get("content") or [] if isinstance(b, dict) and b.get("type") == "text"
        ).strip()
    choices = response.get("choices") or []
    message = (choices[0] or {}).get("message") or {} if choices else {}
    content = message.get("content")
    if isinstance(content, list):
        return "\n\n".join(b.get("text", "") for b in content if isinstance(b, dict)).strip()
    return (content or "").strip()


def _keyframe_refs(actor, entries: list[dict]) -> dict[int, list[str]]:
    """Each entry's keyframe refs that are keyframes of this actor's episodes (others are dropped: a
    conversation log never points outside its actor)."""
    wanted = {}
    for i, entry in enumerate(entries):
        refs = list(entry.get("keyframes") or [])
        if not refs and entry.get("name") == "get_keyframe" and not entry.get("is_error"):
            arguments = entry.get("arguments")
            refs = [arguments.get("keyframe")] if isinstance(arguments, dict) else []
        wanted[i] = [str(r) for r in refs if str(r).isdecimal() and len(str(r)) <= 18]
    ids = {int(r) for refs in wanted.values() for r in refs}
    mine = set(
        Keyframe.objects.filter(pk__in=ids, episode__candidate__actor=actor).values_list("pk", flat=True) if ids else []
    )
    dropped = ids - mine
    if dropped:
        log.warning("actor %s: turn log drops keyframe refs outside the actor: %s", actor.pk, sorted(dropped))
    return {i: [r for r in refs if int(r) in mine] for i, refs in wanted.items()}


def compact_tools(actor, tools) -> list[dict]:
    entries = [t for t in tools or [] if isinstance(t, dict)]
    refs = _keyframe_refs(actor, entries)
    return [
        {
            "name": str(entry.get("name", ""))[:100],
            "arguments": argument_summary(entry.get("arguments")),
            "text": _short(strip_secrets(str(entry.get("text", ""))), RESULT_CHARS),
            "is_error": bool(entry.get("is_error")),
            "keyframes": refs[i],
        }
        for i, entry in enumerate(entries)
    ]


def turn_cost(model: str, usage: dict) -> float:
    """What one turn's tokens cost (worker.agents.pricing, as the round's AgentCall is priced)."""
    return AgentUsage("", model, **{k: int(usage.get(k) or 0) for k in TOKEN_FIELDS}).cost_usd


def record_turn(
    actor, *, round: int, turn: int, backend: str, model: str, sent, response, tools, usage, record=None
) -> AgentTurn | None:
    """Store one model turn (update_or_create on (actor, round, turn): a retried turn replaces its row);
    ``sent`` and ``response`` are kept only when ``record`` (default: the run's settings["record"]).
    Never raises: a turn that cannot be stored is logged and None returned, so the agent goes on."""
    try:
        if record is None:
            record = bool((actor.run.settings or {}).get("record"))
        usage = usage or {}
        tokens = {k: max(int(usage.get(k) or 0), 0) for k in TOKEN_FIELDS}
        response = _jsonable(response) if response is not None else None
        fields = {
            "backend": str(backend)[:20],
            "model": str(model or "")[:100],
            **tokens,
            "cost_usd": turn_cost(model or "", tokens),
            "text": _short(strip_secrets(response_text(backend, response)), RESULT_CHARS),
            "tools": compact_tools(actor, tools),
            "sent": strip_secrets(_jsonable(sent)) if record and sent is not None else None,
            "response": strip_secrets(response) if record and response is not None else None,
        }
        with transaction.atomic():  # a savepoint: a failed write leaves any outer transaction usable
            row, _ = AgentTurn.objects.update_or_create(actor=actor, round=int(round), turn=int(turn), defaults=fields)
        return row
    except Exception:
        log.exception("actor %s: could not record turn %s of round %s", getattr(actor, "pk", None), turn, round)
        return None


def link_turns(agent_call: AgentCall, turns: int) -> int:
    """Point the round's turns (the first ``turns`` of its conversation, not yet linked) at its AgentCall;
    turns beyond them are leftovers of an attempt that died mid-round and stay unlinked."""
    return AgentTurn.objects.filter(
        actor_id=agent_call.actor_id, round=agent_call.round, agent_call__isnull=True, turn__lte=turns
    ).update(agent_call=agent_call)


# -- what the pages show ------------------------------------------------------------------------------


def _keyframe_url(pk, share_token: str | None) -> str:
    if share_token:
        return reverse("sharing:keyframe", args=[share_token, int(pk)])
    return reverse("runs:keyframe", args=[int(pk)])


def _calls_in(backend: str, response) -> list[dict]:
    """The tool calls in a recorded response: [{"name", "arguments"}] (arguments parsed when JSON)."""
    if not isinstance(response, dict):
        return []
    if isinstance(response.get("content"), list):
        return [
            {"name": b.get("name", ""), "arguments": b.get("input")}
            for b in response["content"]
            if isinstance(b, dict) and b.get("type") == "tool_use"
        ]
    choices = response.get("choices") or []
    message = ((choices[0] or {}).get("message") or {}) if choices else {}
    calls = []
    for call in message.get("tool_calls") or []:
        function = (call or {}).get("function") or {}
        arguments = function.get("arguments")
        try:
            arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
        except json.JSONDecodeError:
            pass
        calls.append({"name": function.get("name", ""), "arguments": arguments})
    return calls


def _argument_rows(arguments) -> list[dict]:
    """Arguments as rows for the page: multi-line strings (programs) shown as code."""
    if not isinstance(arguments, dict):
        return [{"name": "", "value": str(arguments), "code": True}]
    rows = []
    for key, value in arguments.items():
        if isinstance(value, str):
            rows.append({"name": key, "value": value, "code": "\n" in value or key == "code"})
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            # submit_candidates: each candidate's fields, its program as code
            for i, item in enumerate(value):
                rows.extend({**row, "name": f"{key}[{i}].{row['name']}"} for row in _argument_rows(item))
        elif isinstance(value, (int, float, bool)) or value is None:
            rows.append({"name": key, "value": json.dumps(value), "code": False})
        else:
            rows.append({"name": key, "value": json.dumps(value, indent=1, default=str), "code": True})
    return rows


def _text_of(content) -> tuple[list[str], int, list[str]]:
    """A message's content as (texts, images omitted, tool results' texts)."""
    if isinstance(content, str):
        return [content], 0, []
    texts, images, results = [], 0, []
    for block in content or []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind in ("image", "image_url"):
            images += 1
        elif kind == "tool_result":
            inner, more, _ = _text_of(block.get("content"))
            images += more
            results.append("\n".join(inner))
    return texts, images, results


def _sent_messages(sent) -> list[dict]:
    """The messages sent this turn, for the page: role, texts, whether it is the system prompt, tool results."""
    shown = []
    for message in sent or []:
        if not isinstance(message, dict):
            continue
        role = message.get("role", "")
        texts, images, results = _text_of(message.get("content"))
        if role == "tool":
            results, texts = texts, []
        shown.append(
            {
                "role": role,
                "system": role == "system",
                "text": "\n\n".join(t for t in texts if t),
                "images": images,
                "tool_results": results,
            }
        )
    return shown


def turn_view(row: AgentTurn, share_token: str | None = None) -> dict:
    """One turn as the conversation page shows it."""
    recorded_calls = _calls_in(row.backend, row.response) if row.recorded else []
    tools = []
    for i, entry in enumerate(row.tools or []):
        arguments = entry.get("arguments")
        if i < len(recorded_calls) and recorded_calls[i]["name"] == entry.get("name"):
            arguments = recorded_calls[i]["arguments"]  # in full
        tools.append(
            {
                **entry,
                "first_line": next(iter(str(entry.get("text") or "").strip().splitlines()), "")[:160],
                "argument_rows": _argument_rows(arguments),
                "thumbnails": [
                    {"id": ref, "url": _keyframe_url(ref, share_token)} for ref in entry.get("keyframes") or []
                ],
            }
        )
    text = row.text
    if row.recorded and row.response is not None:
        text = response_text(row.backend, row.response) or text
    return {
        "row": row,
        "round": row.round,
        "turn": row.turn,
        "text": text,
        "tools": tools,
        "sent": _sent_messages(row.sent) if row.recorded else [],
        "recorded": row.recorded,
        "usage": {**{k: getattr(row, k) for k in TOKEN_FIELDS}, "cost_usd": row.cost_usd},
    }


def _sum(rows) -> dict:
    total = {k: 0 for k in USAGE_FIELDS}
    for row in rows:
        for k in USAGE_FIELDS:
            total[k] += getattr(row, k) if not isinstance(row, dict) else row[k]
    total["cost_usd"] = round(total["cost_usd"], 6)
    return total


def _existing_keyframes(actor, rows) -> set[str]:
    refs = {int(r) for row in rows for t in row.tools or [] for r in t.get("keyframes") or []}
    found = Keyframe.objects.filter(pk__in=refs, episode__candidate__actor=actor).values_list("pk", flat=True)
    return {str(pk) for pk in found} if refs else set()


def turn_rounds(actor, share_token: str | None = None) -> list[dict]:
    """The actor's turns grouped by round: [{"round", "turns": [turn_view], "usage": sums}], rounds in order.
    Keyframes deleted since are left out of the thumbnails."""
    rows = list(actor.agent_turns.all())
    present = _existing_keyframes(actor, rows)
    rounds: dict[int, list] = {}
    for row in rows:
        row.tools = [{**t, "keyframes": [r for r in t.get("keyframes") or [] if r in present]} for t in row.tools or []]
        rounds.setdefault(row.round, []).append(turn_view(row, share_token))
    return [
        {"round": number, "turns": views, "usage": _sum(v["row"] for v in views)}
        for number, views in sorted(rounds.items())
    ]


def conversation_context(actor, share_token: str | None = None) -> dict:
    rounds = turn_rounds(actor, share_token)
    rows = [v["row"] for r in rounds for v in r["turns"]]
    if share_token:
        json_url = reverse("sharing:actor_conversation_json", args=[share_token, actor.pk])
    else:
        json_url = reverse("experiments:conversation_json", args=[actor.pk])
    return {
        "actor": actor,
        "run": actor.run,
        "rounds": rounds,
        "totals": _sum(rows),
        "n_turns": len(rows),
        "record": bool(actor.run.settings.get("record")),
        "any_recorded": any(r.recorded for r in rows),
        "json_url": json_url,
        "share_token": share_token,
    }


def conversation_json(actor) -> dict:
    """The JSON download: the actor's conversation, a list of turns in order.

    {"format": "aspire.conversation/1", "run", "actor", "task", "record", "totals": {tokens, cost_usd},
    "turns": [{"round", "turn", "backend", "model", "usage": {input_tokens, output_tokens,
    cache_read_tokens, cache_write_tokens, cost_usd}, "text", "tools": [compact tool entries], "sent":
    [messages added since the previous request, images replaced by placeholders] or null, "response": the
    SDK's response (Anthropic Message or chat completion) or null}]}. ``sent`` and ``response`` are null
    unless the experiment recorded them; concatenating every turn's ``sent`` with the previous turn's
    response rebuilds the whole request of each turn (system prompt first)."""
    rows = list(actor.agent_turns.all())
    return {
        "format": FORMAT,
        "run": actor.run_id,
        "actor": actor.pk,
        "task": actor.task.key,
        "record": bool(actor.run.settings.get("record")),
        "totals": _sum(rows),
        "turns": [
            {
                "round": row.round,
                "turn": row.turn,
                "backend": row.backend,
                "model": row.model,
                "usage": {**{k: getattr(row, k) for k in TOKEN_FIELDS}, "cost_usd": row.cost_usd},
                "text": row.text,
                "tools": row.tools,
                "sent": row.sent,
                "response": row.response,
            }
            for row in rows
        ],
    }
