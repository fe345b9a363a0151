"""Marking RobotAPI methods as program-callable primitives."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PrimitiveSpec:
    name: str
    method: str
    after_frame: bool
    min_arms: int = 1
    alias_of: str = ""


def primitive(after_frame: bool = False, aliases: tuple[str, ...] = (), min_arms: int = 1):
    """Mark a RobotAPI method as a primitive. Its first parameter after ``self`` is the call context.

    after_frame: the tracer renders a keyframe after the call (gripper actions).
    aliases: extra names for the same primitive (published CaP-X/ASPIRE spellings).
    min_arms: offered to programs only in tasks with at least this many arms.
    """

    def mark(fn):
        fn._primitive = {"after_frame": after_frame, "aliases": aliases, "min_arms": min_arms}
        return fn

    return mark
