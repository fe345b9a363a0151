"""Teams and memberships: who is in which team (runs.access decides what that lets them see)."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Membership, Team


def teams_of(user) -> QuerySet:
    if not getattr(user, "is_authenticated", False):
        return Team.objects.none()
    return Team.objects.filter(memberships__user=user)


def add_member(team: Team, user, role: str = Membership.Role.MEMBER) -> Membership:
    membership, _ = Membership.objects.update_or_create(team=team, user=user, defaults={"role": role})
    return membership
