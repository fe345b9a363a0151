"""Marking RobotAPI methods as program-callable primitives, per API profile."""

from __future__ import annotations

from dataclasses import dataclass

#: The API profiles a program can run under (worker.robot.profiles explains them and the "auto" rule).
NATIVE = "native"
PUBLISHED = "published"
PROFILES = (NATIVE, PUBLISHED)


@dataclass(frozen=True)
class PrimitiveSpec:
    name: str
    method: str
    after_frame: bool
    min_arms: int = 1
    alias_of: str = ""


def primitive(
    after_frame: bool = False,
    aliases: tuple[str, ...] = (),
    min_arms: int = 1,
    profiles: tuple[str, ...] = PROFILES,
    name: str = "",
):
    """Mark a RobotAPI method as a primitive. Its first parameter after ``self`` is the call context.

    after_frame: the tracer renders a keyframe before and after the call (motion and gripper actions).
    aliases: extra names for the same primitive (published CaP-X/ASPIRE spellings).
    min_arms: offered to programs only in tasks with at least this many arms.
    profiles: the API profiles that offer it (default both). A method offered only under the
        published profile with ``name`` set replaces the native primitive of that name there.
    name: the name programs call it by (default the method's name).
    """
    unknown = set(profiles) - set(PROFILES)
    if unknown:
        raise ValueError(f"unknown API profile(s) {sorted(unknown)}")

    def mark(fn):
        fn._primitive = {
            "after_frame": after_frame,
            "aliases": aliases,
            "min_arms": min_arms,
            "profiles": tuple(profiles),
            "name": name or fn.__name__,
        }
        return fn

    return mark
