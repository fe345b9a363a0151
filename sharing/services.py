"""Make, resolve and revoke share links, and decide what a link lets its holder read.

Token format in URLs: ``<random>:<signature>``. The random part is 32 bytes from ``secrets`` (the
unguessable part); the signature (Django's Signer, salted) rejects tampered or made-up tokens before
the database is asked and ties every link to SECRET_KEY, so rotating the key voids all of them.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.apps import apps
from django.core import signing
from django.db import transaction
from django.utils import timezone

from accounts.services import can_view_run

from .models import ShareLink

log = logging.getLogger(__name__)
SALT = "aspire.sharing.link"


class ShareError(Exception):
    """A link cannot be made or used; ``status`` is the HTTP status a page should answer with."""

    def __init__(self, message: str, status: int = 404):
        super().__init__(message)
        self.status = status


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT)


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def get_target(kind: str, target_id: int):
    """The object a link of ``kind`` points at; raises ShareError (404) when it does not exist."""
    model = {
        ShareLink.Kind.RUN: ("runs", "Run"),
        ShareLink.Kind.EPISODE: ("runs", "Episode"),
        ShareLink.Kind.SKILL: ("skills", "Skill"),
    }.get(kind)
    if model is None:
        raise ShareError(f"unknown share kind {kind!r}", 400)
    obj = apps.get_model(*model).objects.filter(pk=target_id).first()
    if obj is None:
        raise ShareError(f"no {kind} {target_id}")
    return obj


def _run_of(kind: str, target):
    if kind == ShareLink.Kind.RUN:
        return target
    if kind == ShareLink.Kind.EPISODE:
        return target.run
    return None


def can_share(user, kind: str, target) -> bool:
    """Anyone who can read a run (or an episode of it) may share it; skills are the lab's shared
    library, readable by every signed-in user."""
    if not getattr(user, "is_authenticated", False):
        return False
    run = _run_of(kind, target)
    return can_view_run(user, run) if run is not None else True


def create_link(user, kind: str, target_id: int, *, label: str = "", expires_in_days: int | None = None) -> tuple[ShareLink, str]:
    """Make a link; returns (link, token). The token is not stored and cannot be shown again."""
    target = get_target(kind, target_id)
    if not can_share(user, kind, target):
        raise ShareError(f"no {kind} {target_id}")  # same answer as a missing one: existence is not leaked
    if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
        raise ShareError("expiry must be between 1 and 3650 days", 400)
    raw = secrets.token_urlsafe(32)
    run = _run_of(kind, target)
    link = ShareLink.objects.create(
        kind=kind, target_id=target.pk, run=run, token_hash=_digest(raw), label=label[:200], created_by=user,
        expires_at=timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    return link, _signer().sign(raw)


def resolve(token: str) -> ShareLink:
    """The active link behind ``token``; ShareError 404 for a bad or unknown token, 410 when revoked or
    expired."""
    try:
        raw = _signer().unsign(token)
    except signing.BadSignature:
        raise ShareError("this share link is not valid") from None
    link = ShareLink.objects.filter(token_hash=_digest(raw)).first()
    if link is None:
        raise ShareError("this share link is not valid")
    if not link.active:
        raise ShareError("this share link was revoked or has expired", 410)
    return link


def touch(link: ShareLink) -> None:
    """Record use, at most once a minute per link so busy pages do not write on every request."""
    now = timezone.now()
    if link.last_used_at is None or now - link.last_used_at > timedelta(minutes=1):
        ShareLink.objects.filter(pk=link.pk).update(last_used_at=now)


def can_manage(user, link: ShareLink) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_staff or link.created_by_id == user.pk:
        return True
    return link.run is not None and can_view_run(user, link.run)


def revoke(link: ShareLink, user) -> bool:
    """Revoke ``link`` for good; False when it already was. Open live connections using it are closed
    (after commit) so a revoked link stops showing new data at once."""
    if not can_manage(user, link):
        raise ShareError("no such share link")
    with transaction.atomic():
        updated = ShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(revoked_at=timezone.now(), revoked_by=user)
        if updated and link.run_id:
            from runs import live

            run_id, link_id = link.run_id, link.pk
            transaction.on_commit(lambda: live.publish(run_id, {"type": "share.revoked", "link": link_id}))
    return bool(updated)


def links_for(kind: str, target_id: int):
    return ShareLink.objects.filter(kind=kind, target_id=target_id).select_related("created_by")


@dataclass(frozen=True)
class Scope:
    """What one share link lets its holder read: its target, and for a run the run's episodes and keyframes."""

    link: ShareLink

    @property
    def kind(self) -> str:
        return self.link.kind

    def allows_run(self, run_id: int) -> bool:
        return self.link.kind == ShareLink.Kind.RUN and self.link.target_id == run_id

    def allows_episode(self, episode) -> bool:
        if self.link.kind == ShareLink.Kind.EPISODE:
            return episode.pk == self.link.target_id
        return self.allows_run(episode.run_id)

    def allows_keyframe(self, keyframe) -> bool:
        return self.allows_episode(keyframe.episode)
