"""Make, resolve and revoke share links, and decide who may. What a link opens is up to the app that owns
its target (sharing.targets).

Token format in URLs: ``<random>:<signature>``. The random part is 32 bytes from ``secrets`` (the
unguessable part); the signature (Django's Signer, salted) rejects tampered or made-up tokens before
the database is asked and ties every link to SECRET_KEY, so rotating the key voids all of them.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

from django.core import signing
from django.db import transaction
from django.utils import timezone

from . import targets
from .models import ShareLink
from .signals import link_revoked

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


def _share_target(kind: str) -> targets.ShareTarget:
    found = targets.target(kind)
    if found is None:
        raise ShareError(f"unknown share kind {kind!r}", 400)
    return found


def get_target(kind: str, target_id: int):
    """The object a link of ``kind`` points at; raises ShareError (404) when it does not exist, 400 for an
    unknown kind."""
    obj = _share_target(kind).get(target_id)
    if obj is None:
        raise ShareError(f"no {kind} {target_id}")
    return obj


def can_share(user, kind: str, target) -> bool:
    """A signed-in user may share what they may read (the kind's owner decides: runs and their traces for
    whoever can read the run, skills for everyone signed in)."""
    if not getattr(user, "is_authenticated", False):
        return False
    return _share_target(kind).readable_by(user, target)


def create_link(
    user, kind: str, target_id: int, *, label: str = "", expires_in_days: int | None = None
) -> tuple[ShareLink, str]:
    """Make a link; returns (link, token). The token is not stored and cannot be shown again."""
    target = get_target(kind, target_id)
    if not can_share(user, kind, target):
        raise ShareError(f"no {kind} {target_id}")  # same answer as a missing one: existence is not leaked
    if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
        raise ShareError("expiry must be between 1 and 3650 days", 400)
    raw = secrets.token_urlsafe(32)
    run = _share_target(kind).run_of(target)
    link = ShareLink.objects.create(
        kind=kind,
        target_id=target.pk,
        run=run,
        token_hash=_digest(raw),
        label=label[:200],
        created_by=user,
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
    """Staff, the link's maker, and anyone who can read the run the link belongs to may revoke it."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_staff or link.created_by_id == user.pk:
        return True
    return link.run is not None and _share_target(ShareLink.Kind.RUN).readable_by(user, link.run)


def revoke(link: ShareLink, user) -> bool:
    """Revoke ``link`` for good; False when it already was. After commit, ``link_revoked`` is sent, so
    open live connections using it are closed (runs does) and a revoked link stops showing new data at once."""
    if not can_manage(user, link):
        raise ShareError("no such share link")
    with transaction.atomic():
        updated = ShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=user
        )
        if updated:
            transaction.on_commit(lambda: link_revoked.send(sender=ShareLink, link=link))
    return bool(updated)


def links_for(kind: str, target_id: int):
    return ShareLink.objects.filter(kind=kind, target_id=target_id).select_related("created_by")
