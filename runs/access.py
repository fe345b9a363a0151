"""Who may see which runs. One place decides, so pages, the REST API, websockets and share links agree.

A run is visible to its owner, to every member of its team (accounts.Team), and to staff (who review the
skill library and so need every run's evidence). Runs without an owner (launched from the command line)
are staff-only.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from accounts.models import Membership

from .models import Run


def visible_runs(user, runs: QuerySet | None = None) -> QuerySet:
    """``runs`` (default: every run) narrowed to the ones ``user`` may read."""
    runs = Run.objects.all() if runs is None else runs
    if not getattr(user, "is_authenticated", False):
        return runs.none()
    if user.is_staff:
        return runs
    team_ids = Membership.objects.filter(user=user).values("team_id")
    return runs.filter(Q(owner=user) | Q(team_id__in=team_ids))


def can_view_run(user, run) -> bool:
    return visible_runs(user).filter(pk=run.pk).exists()
