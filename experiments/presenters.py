"""What the experiment pages show: an actor's page, the actors' table and the search progress on the run
page (added there through runs.presenters.RunPageExtension, registered in ExperimentsConfig.ready())."""

from __future__ import annotations

from runs import plots
from runs.models import Actor, Episode, Run
from runs.presenters import RunPageExtension, candidates_of, leaderboard, usage

from .conversations import turn_rounds


def actor_context(actor: Actor) -> dict:
    """One task's search in an experiment: its rounds, candidates, agent calls, the agent's turns per round
    (experiments.conversations) and proposed skills."""
    candidates = candidates_of(actor.candidates)
    return {
        "turn_rounds": turn_rounds(actor),
        "actor": actor,
        "run": actor.run,
        "candidates": candidates,
        "leaderboard": leaderboard(actor.run, actor),
        "multi_candidate": len(candidates) > 1,
        "plot": plots.success_by_round(candidates),
        "usage": usage(actor),
        "agent_calls": list(actor.agent_calls.all()),
        "experiments": list(actor.candidates.filter(origin="experiment").order_by("round", "index")),
        "proposed_skills": proposed_skills(actor),
        "share_token": None,
        # static/js/actor.js: the run's live stream tells the page when to fetch itself again.
        "page_config": {"ws": f"/ws/runs/{actor.run_id}/", "terminal": actor.is_terminal},
    }


def proposed_skills(actor: Actor) -> list[dict]:
    """The actor's skill proposals, each with the library's skill of that name when there is one (the
    newest version proposed from this run, else the newest of that name) so the page links to it:
    ``[{"name", "evidence", "skill"}]``."""
    from skills.models import Skill

    names = [p.get("name") for p in actor.proposed_skills if isinstance(p, dict) and p.get("name")]
    found: dict[str, Skill] = {}
    for skill in Skill.objects.filter(name__in=names).order_by("name", "-version"):
        mine = skill.source_run_id == actor.run_id
        if skill.name not in found or (mine and found[skill.name].source_run_id != actor.run_id):
            found[skill.name] = skill
    return [
        {"name": p.get("name"), "evidence": p.get("evidence"), "skill": found.get(p.get("name"))}
        for p in actor.proposed_skills
        if isinstance(p, dict) and p.get("name")
    ]


def actor_rows(run: Run) -> list[dict]:
    """The run page's table of actors: each with its rounds, time and debug improvement."""
    rows = []
    for actor in run.actors.select_related("task", "best").order_by("task__key", "library_size"):
        improved = actor.final_debug_rate is not None and actor.first_debug_rate is not None
        rows.append(
            {
                "actor": actor,
                "rounds": actor.current_round + 1,
                "wall_s": actor.wall_s,
                "improvement": actor.final_debug_rate - actor.first_debug_rate if improved else None,
            }
        )
    return rows


def experiment_progress(run: Run) -> dict:
    """An experiment's progress, in the shape of runs.presenters.progress: debug episodes of the agents'
    candidates, search rounds (an actor that stopped has none left) and held-out seeds."""

    def part(done, total):
        return {"done": done, "total": total, "percent": int(100 * done / total) if total else 0} if total else None

    actors = list(run.actors.all())
    planned_rounds = sum(int(a.settings.get("max_rounds", 0)) for a in actors)
    # An actor that stopped (target, plateau, budget) has no rounds left; one still searching has
    # finished the rounds before its current one.
    rounds_done = sum(
        int(a.settings.get("max_rounds", 0))
        if (a.is_terminal or a.status == Actor.Status.HELDOUT)
        else max(0, a.current_round)
        for a in actors
    )
    episodes = Episode.objects.filter(run=run).exclude(status__in=Episode.NO_RESULT)
    debug_total = sum(len(a.settings.get("debug_seeds", [])) * max(1, a.search_candidates().count()) for a in actors)
    heldout_total = sum(len(a.settings.get("heldout_seeds", [])) for a in actors)
    return {
        "episodes": part(episodes.filter(split=Episode.Split.DEBUG, candidate__origin="agent").count(), debug_total),
        "rounds": part(min(rounds_done, planned_rounds), planned_rounds),
        "heldout": part(episodes.filter(split=Episode.Split.HELDOUT).count(), heldout_total),
    }


#: The run page of an experiment: its search progress and the table of its actors.
RUN_PAGE = RunPageExtension(
    handles=lambda run: run.is_experiment,
    progress=experiment_progress,
    context=lambda run: {"actor_rows": actor_rows(run)},
    sections=("experiments/_actors.html",),
)
