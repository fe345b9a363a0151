"""Token usage and its cost.

Prices in USD per million tokens from Anthropic's pricing page
(https://platform.claude.com/docs/en/about-claude/pricing, "Model pricing"; read 2026-11): base
input, 5-minute cache writes, cache hits, output. Models not listed (OpenAI-compatible endpoints,
local models) cost 0 unless ASPIRE_MODEL_PRICES (JSON: {"model": [input, cache_write, cache_read,
output]}) says otherwise.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

PRICES = {
    "claude-opus-5-5": (4.00, 5.00, 0.20, 20.00),
    "claude-opus-5": (5.00, 6.25, 0.50, 25.00),
    "claude-opus-4-8": (5.00, 6.25, 0.50, 25.00),
    "claude-opus-4-7": (5.00, 6.25, 0.50, 25.00),
    "claude-opus-4-6": (5.00, 6.25, 0.50, 25.00),
    "claude-opus-4-5": (5.00, 6.25, 0.50, 25.00),
    "claude-sonnet-5-5": (2.00, 2.50, 0.10, 10.00),
    "claude-sonnet-5": (2.00, 2.50, 0.20, 10.00),
    "claude-sonnet-4-6": (3.00, 3.75, 0.30, 15.00),
    "claude-sonnet-4-5": (3.00, 3.75, 0.30, 15.00),
    "claude-haiku-5-5": (0.10, 0.125, 0.01, 0.50),
    "claude-haiku-4-5": (1.00, 1.25, 0.10, 5.00),
}
DEFAULT_CLAUDE_MODEL = "claude-opus-5-5"


def price_of(model: str) -> tuple[float, float, float, float]:
    custom = json.loads(os.environ.get("ASPIRE_MODEL_PRICES", "{}") or "{}")
    if model in custom:
        return tuple(float(v) for v in custom[model])
    for name, price in PRICES.items():  # dated snapshots ("claude-opus-4-5-20251101") price as their family
        if model == name or model.startswith(name + "-"):
            return price
    return (0.0, 0.0, 0.0, 0.0)


@dataclass
class AgentUsage:
    """One agent call (a whole tool-use conversation for one round) and what it cost."""

    backend: str
    model: str
    purpose: str = "propose"
    round: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    turns: int = 0
    duration_s: float = 0.0
    tool_calls: list = field(default_factory=list)
    error: str = ""

    @property
    def cost_usd(self) -> float:
        p_in, p_write, p_read, p_out = price_of(self.model)
        return round(
            (
                self.input_tokens * p_in
                + self.cache_write_tokens * p_write
                + self.cache_read_tokens * p_read
                + self.output_tokens * p_out
            )
            / 1e6,
            6,
        )

    def as_dict(self) -> dict:
        return {**asdict(self), "cost_usd": self.cost_usd}
