"""Open run and trace sockets are closed (4403) as soon as the viewer loses access: removed from the team,
the team deleted, the run moved to another team, the account deactivated, the share link revoked; and
by the periodic re-check when no signal announces it. Real Redis channel layer, channels' communicator."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.db import connection

from accounts.models import Membership, Team
from accounts.services import add_member
from accounts.tests.factories import UserFactory
from runs.routing import websocket_urlpatterns
from sharing import services as sharing

from .factories import RunFactory, StartedEpisodeFactory

APP = URLRouter(websocket_urlpatterns)
TIMEOUT = 5
CLOSED = {"type": "websocket.close", "code": 4403}


@pytest.fixture
def team(transactional_db):
    return Team.objects.create(name="lab")


@pytest.fixture
def owner(team):
    user = UserFactory(username="owner")
    add_member(team, user)
    return user


@pytest.fixture
def member(team):
    user = UserFactory(username="member")
    add_member(team, user)
    return user


@pytest.fixture
def colleague(team):
    """A second member who stays in the team throughout."""
    user = UserFactory(username="colleague")
    add_member(team, user)
    return user


@pytest.fixture
def run(owner, team):
    return RunFactory(owner=owner, team=team)


async def opened(path, user=None):
    comm = WebsocketCommunicator(APP, path)
    comm.scope["user"] = user or AnonymousUser()
    connected, _ = await comm.connect(TIMEOUT)
    assert connected
    return comm


def scenario(change, *, closes, stays=(), paths=None):
    """Open a run page for each user in ``closes`` and ``stays`` (and a trace page for the first of
    ``closes``), apply ``change`` (sync, in the database), then: ``closes`` sockets are closed with 4403,
    ``stays`` sockets stay open."""

    async def run_it():
        doomed = [await opened(p, u) for p, u in closes]
        kept = [await opened(p, u) for p, u in stays]
        await database_sync_to_async(change)()
        for comm in doomed:
            assert await comm.receive_output(TIMEOUT) == CLOSED
        for comm in kept:
            assert await comm.receive_nothing(0.5)
            await comm.disconnect()

    async_to_sync(run_it)()


def test_a_member_removed_from_the_team_loses_the_run_page_and_trace_pages(run, owner, member, colleague):
    _, ep = StartedEpisodeFactory(run=run)
    scenario(
        lambda: Membership.objects.get(user=member).delete(),
        closes=[(f"/ws/runs/{run.pk}/", member), (f"/ws/episodes/{ep}/", member)],
        stays=[(f"/ws/runs/{run.pk}/", owner), (f"/ws/runs/{run.pk}/", colleague), (f"/ws/episodes/{ep}/", colleague)],
    )


def test_deleting_the_team_closes_every_member_page_but_the_owners(run, owner, member, colleague, team):
    scenario(
        team.delete,
        closes=[(f"/ws/runs/{run.pk}/", member), (f"/ws/runs/{run.pk}/", colleague)],
        stays=[(f"/ws/runs/{run.pk}/", owner)],
    )


def test_moving_the_run_to_another_team_closes_the_old_teams_pages(run, owner, member):
    other = Team.objects.create(name="elsewhere")
    add_member(other, owner)

    def move():
        run.team = other
        run.save()

    scenario(move, closes=[(f"/ws/runs/{run.pk}/", member)], stays=[(f"/ws/runs/{run.pk}/", owner)])


def test_a_deactivated_or_demoted_account_loses_its_pages(run, owner, transactional_db):
    outsider = UserFactory(username="reviewer", is_staff=True)  # staff reads every run

    def demote():
        outsider.is_staff = False
        outsider.save()

    scenario(demote, closes=[(f"/ws/runs/{run.pk}/", outsider)], stays=[(f"/ws/runs/{run.pk}/", owner)])

    def deactivate():
        owner.is_active = False
        owner.save(update_fields=["is_active"])

    scenario(deactivate, closes=[(f"/ws/runs/{run.pk}/", owner)])


def test_changes_that_keep_access_close_nothing(run, owner, member):
    def harmless():
        member.first_name = "Ada"
        member.save()
        add_member(Team.objects.create(name="another"), member)
        run.status = run.Status.RUNNING
        run.save()

    scenario(harmless, closes=[], stays=[(f"/ws/runs/{run.pk}/", member), (f"/ws/runs/{run.pk}/", owner)])


def test_a_revoked_share_link_closes_the_shared_run_page(run, owner, member):
    link, token = sharing.create_link(owner, "run", run.pk)
    scenario(
        lambda: sharing.revoke(link, owner),
        closes=[(f"/ws/runs/{run.pk}/?share={token}", None)],
        stays=[(f"/ws/runs/{run.pk}/", member)],
    )


def test_the_periodic_recheck_catches_what_no_signal_announces(run, member, settings):
    """A membership removed with raw SQL sends no signal: the socket still closes within the re-check
    interval (here 0.5 s)."""
    settings.ASPIRE = {**settings.ASPIRE, "ACCESS_RECHECK_SECONDS": 0.5}

    def raw_delete():
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {Membership._meta.db_table} WHERE user_id = %s", [member.pk])

    scenario(raw_delete, closes=[(f"/ws/runs/{run.pk}/", member)])


def test_without_the_signal_and_the_periodic_recheck_the_socket_would_stay_open(run, member, settings):
    """The control for the tests above: with a long interval, a change no signal announces leaves the
    socket open (so it is the re-check messages that close them)."""
    settings.ASPIRE = {**settings.ASPIRE, "ACCESS_RECHECK_SECONDS": 3600}

    def raw_delete():
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {Membership._meta.db_table} WHERE user_id = %s", [member.pk])

    scenario(raw_delete, closes=[], stays=[(f"/ws/runs/{run.pk}/", member)])
