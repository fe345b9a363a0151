"""The admission evidence of a skill, arranged for pages: per seed, the before/after (and parent)
episodes with a few telling keyframes each."""

from __future__ import annotations

from runs.models import Episode, Keyframe
from worker.robot.status import CallStatus

from .models import SkillValidation

FRAMES_PER_EPISODE = 2
ROLES = ("before", "after", "parent")


def _telling_frames(frames: list[Keyframe]) -> list[Keyframe]:
    # The scene where it went wrong: frames of failing calls and the final frame of a failed episode;
    # for an episode that went right, its last frames (the lift, the release).
    failing = [k for k in frames if k.call_id is None or (k.call is not None and k.call.status != CallStatus.OK)]
    chosen = failing or frames
    return chosen[-FRAMES_PER_EPISODE:]


def evidence_rows(validation: SkillValidation) -> list[dict]:
    """One row per re-executed seed: ``{"seed", "role", "flipped", "broken", "before": cell, "after":
    cell, "parent": cell | None, "cells": [before, after(, parent)]}`` where a cell is
    ``{"episode": Episode | None, "success", "status", "frames": [Keyframe]}``."""
    ids = [r[role]["episode"] for r in validation.results for role in ROLES if r.get(role)]
    episodes = Episode.objects.in_bulk(ids)
    frames: dict[int, list[Keyframe]] = {}
    for keyframe in Keyframe.objects.filter(episode_id__in=ids, kind="frame").select_related("call").order_by("id"):
        frames.setdefault(keyframe.episode_id, []).append(keyframe)
    flipped, broken = set(validation.flipped), set(validation.broken)
    rows = []
    for result in validation.results:
        row = {
            "seed": result["seed"],
            "role": result["role"],
            "flipped": result["seed"] in flipped,
            "broken": result["seed"] in broken,
        }
        for role in ROLES:
            outcome = result.get(role)
            if not outcome:
                row[role] = None
                continue
            episode_id = outcome["episode"]
            row[role] = {
                "episode": episodes.get(episode_id),
                "success": outcome["success"],
                "status": outcome["status"],
                "frames": _telling_frames(frames.get(episode_id, [])),
            }
        row["cells"] = [row["before"], row["after"]] + ([row["parent"]] if row["parent"] is not None else [])
        rows.append(row)
    return rows
