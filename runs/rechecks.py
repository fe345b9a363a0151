"""Open run and trace pages lose their live stream as soon as the viewer loses access to the run.

Access (runs.access) follows the run's owner and team, team memberships and the user's staff flag, and a
share link's state. When one of those changes, the sockets that may be affected are told to re-check:

- a Membership deleted (a user removed from a team, or the team deleted, which deletes its memberships),
  a user deactivated, made non-staff or deleted -> the user's group, ``access_user_<id>``;
- a run's team or owner changed -> the run's live group (runs.live.group_name);
- a share link revoked -> already handled: runs.shares publishes ``share.revoked`` to the run's group.

The message is ``{"type": "access.recheck"}``, sent after the transaction commits through the live
broadcaster (never failing the change that caused it). runs.consumers re-evaluates access from the
database on it, and closes the socket with code 4403 when access is gone. A message lost to a Redis
outage is covered by the consumers' periodic re-check (settings ASPIRE["ACCESS_RECHECK_SECONDS"]).

Changes made with ``QuerySet.update()`` or raw SQL send no signals; the periodic re-check covers them.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_delete, post_init, post_save

from accounts.models import Membership

from . import live
from .models import Run

RECHECK = "access.recheck"
_RUN_KEYS = ("team_id", "owner_id")
_USER_KEYS = ("is_active", "is_staff")


def user_group(user_id: int) -> str:
    """The channel-layer group of every live socket a signed-in user holds."""
    return f"access_user_{user_id}"


def recheck_user(user_id: int) -> None:
    """After commit, make every live socket of ``user_id`` re-check its access."""
    transaction.on_commit(lambda: live.broadcaster.publish(user_group(user_id), {"type": RECHECK}))


def recheck_run(run_id: int) -> None:
    """After commit, make every live socket on run ``run_id`` (run page and trace pages) re-check."""
    transaction.on_commit(lambda: live.broadcaster.publish(live.group_name(run_id), {"type": RECHECK}))


def _remember(keys):
    def receiver(sender, instance, **kwargs):
        instance._access_keys = tuple(instance.__dict__.get(k) for k in keys)

    return receiver


def _changed(instance, keys, update_fields) -> bool:
    if update_fields is not None and not {k.removesuffix("_id") for k in keys} & set(update_fields):
        return False
    before = getattr(instance, "_access_keys", None)
    after = tuple(instance.__dict__.get(k) for k in keys)
    instance._access_keys = after
    return before is not None and before != after


def _membership_deleted(sender, instance, **kwargs):
    recheck_user(instance.user_id)


def _run_saved(sender, instance, created, update_fields=None, **kwargs):
    if not created and _changed(instance, _RUN_KEYS, update_fields):
        recheck_run(instance.pk)


def _user_saved(sender, instance, created, update_fields=None, **kwargs):
    if not created and _changed(instance, _USER_KEYS, update_fields):
        recheck_user(instance.pk)


def _user_deleted(sender, instance, **kwargs):
    recheck_user(instance.pk)


def connect() -> None:
    """Connect the receivers (RunsConfig.ready()); idempotent."""
    User = get_user_model()
    post_delete.connect(_membership_deleted, sender=Membership, dispatch_uid="runs.rechecks.membership")
    post_init.connect(_remember(_RUN_KEYS), sender=Run, weak=False, dispatch_uid="runs.rechecks.run_init")
    post_save.connect(_run_saved, sender=Run, dispatch_uid="runs.rechecks.run_saved")
    post_init.connect(_remember(_USER_KEYS), sender=User, weak=False, dispatch_uid="runs.rechecks.user_init")
    post_save.connect(_user_saved, sender=User, dispatch_uid="runs.rechecks.user_saved")
    post_delete.connect(_user_deleted, sender=User, dispatch_uid="runs.rechecks.user_deleted")
