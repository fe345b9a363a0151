"""The run and trace websockets (channels.testing), fed by the real sink through the real Redis layer:
resume from the database, live events after commit, no gaps or duplicates across reconnects, access."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from accounts.models import Team
from accounts.services import add_member
from accounts.tests.factories import UserFactory
from runs import live, services
from runs.models import PrimitiveCall
from runs.routing import websocket_urlpatterns
from sharing import services as sharing

from .factories import CallRecordFactory, EpisodeResultFactory, RunFactory, StartedEpisodeFactory

APP = URLRouter(websocket_urlpatterns)
TIMEOUT = 5


@pytest.fixture
def owner(transactional_db):
    return UserFactory(username="owner")


@pytest.fixture
def run(owner):
    return RunFactory(owner=owner)


def connect(path, user=None):
    comm = WebsocketCommunicator(APP, path)
    comm.scope["user"] = user or AnonymousUser()
    return comm


async def calls_until(comm, last_seq):
    """Every call the trace socket sends, in order, until ``last_seq`` arrives."""
    seqs = []
    while not seqs or seqs[-1] < last_seq:
        msg = await comm.receive_json_from(TIMEOUT)
        if msg["type"] == "calls":
            seqs += [c["seq"] for c in msg["calls"]]
    return seqs


async def next_of(comm, kind):
    while True:
        msg = await comm.receive_json_from(TIMEOUT)
        if msg["type"] == kind:
            return msg


record = database_sync_to_async(lambda sink, ep, seq: sink.call_recorded(ep, CallRecordFactory(seq=seq)))


def episode_with_calls(run, n):
    """A running episode with calls 1..n, all broadcast before any page subscribes."""
    sink, ep = StartedEpisodeFactory(run=run)
    for seq in range(1, n + 1):
        sink.call_recorded(ep, CallRecordFactory(seq=seq))
    live.broadcaster.flush()
    return sink, ep


async def subscribed(ep, user, after=0, upto=None):
    """A trace socket that has resumed after ``after`` and taken the replay up to call ``upto``."""
    comm = connect(f"/ws/episodes/{ep}/", user)
    assert (await comm.connect())[0]
    await comm.send_json_to({"type": "resume", "after": after})
    replayed = await calls_until(comm, upto) if upto else []
    await next_of(comm, "episode")
    return comm, replayed


def test_it_replays_what_the_page_lacks_then_streams_live_calls_exactly_once(run, owner):
    sink, ep = episode_with_calls(run, 3)

    async def scenario():
        comm, replayed = await subscribed(ep, owner, after=1, upto=3)
        assert replayed == [2, 3]
        await record(sink, ep, 4)
        live_msg = await next_of(comm, "calls")
        assert [c["seq"] for c in live_msg["calls"]] == [4] and live_msg["committed_at"] > 0
        await comm.disconnect()

        # Calls committed while the page is disconnected come back on resume; nothing twice, nothing lost.
        await record(sink, ep, 5)
        await record(sink, ep, 6)
        comm, replayed = await subscribed(ep, owner, after=4, upto=6)
        assert replayed == [5, 6]
        await record(sink, ep, 7)
        assert await calls_until(comm, 7) == [7]
        assert await comm.receive_nothing(0.3)
        await comm.disconnect()

    async_to_sync(scenario)()


def test_it_fills_a_gap_from_the_database_and_drops_duplicates(run, owner):
    sink, ep = episode_with_calls(run, 1)

    async def scenario():
        comm, replayed = await subscribed(ep, owner, upto=1)
        assert replayed == [1]

        # Call 2 is committed but its broadcast is lost; call 3's broadcast reveals the gap.
        await database_sync_to_async(
            lambda: PrimitiveCall.objects.create(
                episode_id=ep,
                seq=2,
                primitive="solve_ik",
                status="OK",
                started_at="2026-01-01T00:00:00Z",
                duration_ms=1,
            )
        )()
        await record(sink, ep, 3)
        assert await calls_until(comm, 3) == [2, 3]

        # The same event delivered twice is shown once.
        duplicate = {"type": "live.call", "episode": ep, "seq": 3, "call": {"seq": 3, "keyframes": []}}
        await comm.send_json_to({"type": "noise"})
        from channels.layers import get_channel_layer

        await get_channel_layer().group_send(live.group_name(run.pk), duplicate)
        assert await comm.receive_nothing(0.5)
        await comm.disconnect()

    async_to_sync(scenario)()


def test_it_resets_the_page_when_an_episode_restarts_and_sends_the_end(run, owner):
    sink, ep = episode_with_calls(run, 1)

    async def scenario():
        comm, _ = await subscribed(ep, owner, upto=1)
        # A redelivered task re-runs the unfinished episode: its old calls are gone.
        await database_sync_to_async(lambda: StartedEpisodeFactory(run=run))()
        await next_of(comm, "reset")
        await record(sink, ep, 1)
        assert await calls_until(comm, 1) == [1]
        await database_sync_to_async(sink.episode_finished)(ep, EpisodeResultFactory(n_calls=1))
        assert (await next_of(comm, "episode"))["episode"]["status"] == "OK"
        await comm.disconnect()

    async_to_sync(scenario)()


def test_it_sends_the_run_page_fragments_in_run_seq_order(run, owner):
    candidate_id = run.candidates.get().pk

    async def scenario():
        comm = connect(f"/ws/runs/{run.pk}/", owner)
        assert (await comm.connect())[0]
        await comm.send_json_to({"type": "resume"})
        snapshot = await next_of(comm, "fragments")
        ids = [f["id"] for f in snapshot["fragments"]]
        assert "run-summary" in ids and f"candidate-{candidate_id}" in ids

        sink, ep = await database_sync_to_async(StartedEpisodeFactory)(run=run)
        started = await next_of(comm, "fragments")
        assert started["run_seq"] == snapshot["run_seq"] + 1
        row = next(f for f in started["fragments"] if f["id"].startswith("candidate-"))
        assert f'id="episode-row-{ep}"' in row["html"] and 'class="episode-row"' in row["html"]

        await record(sink, ep, 1)
        tick = await next_of(comm, "call")
        assert (tick["episode"], tick["seq"], tick["primitive"]) == (ep, 1, "get_observation")

        await database_sync_to_async(sink.episode_finished)(ep, EpisodeResultFactory(n_calls=1))
        done = await next_of(comm, "fragments")
        assert done["run_seq"] == started["run_seq"] + 1
        summary = next(f["html"] for f in done["fragments"] if f["id"] == "run-summary")
        assert "100%" in summary

        await database_sync_to_async(services.cancel_run)(run, owner)
        cancelled = await next_of(comm, "fragments")
        assert "CANCELLED" in next(f["html"] for f in cancelled["fragments"] if f["id"] == "run-summary")
        await comm.disconnect()

        # A page that already shows the latest state gets nothing on resume.
        seq = await database_sync_to_async(lambda: type(run).objects.get(pk=run.pk).event_seq)()
        comm = connect(f"/ws/runs/{run.pk}/", owner)
        await comm.connect()
        await comm.send_json_to({"type": "resume", "run_seq": seq})
        assert await comm.receive_nothing(0.3)
        await comm.disconnect()

    async_to_sync(scenario)()


def test_it_admits_owners_team_members_and_share_links_and_no_one_else(run, owner):
    stranger = UserFactory(username="stranger")
    teammate = UserFactory(username="teammate")
    team = Team.objects.create(name="lab")
    add_member(team, owner)
    add_member(team, teammate)
    team_run = RunFactory(owner=owner, team=team)
    sink, ep = StartedEpisodeFactory(run=run)
    _, other_ep = StartedEpisodeFactory(run=team_run)
    link, token = sharing.create_link(owner, "episode", ep)
    run_link, run_token = sharing.create_link(owner, "run", run.pk)
    live.broadcaster.flush()

    async def admitted(path, user=None):
        comm = connect(path, user)
        ok, _ = await comm.connect()
        await comm.disconnect()
        return ok

    async def scenario():
        assert await admitted(f"/ws/runs/{run.pk}/", owner)
        assert not await admitted(f"/ws/runs/{run.pk}/", stranger)
        assert not await admitted(f"/ws/runs/{run.pk}/")
        assert not await admitted(f"/ws/episodes/{ep}/", teammate)  # not a team run
        assert await admitted(f"/ws/episodes/{other_ep}/", teammate)
        assert await admitted(f"/ws/runs/{team_run.pk}/", teammate)
        assert not await admitted("/ws/runs/99999/", owner)
        # A share link grants only its own target.
        assert await admitted(f"/ws/episodes/{ep}/?share={token}")
        assert not await admitted(f"/ws/runs/{run.pk}/?share={token}")
        assert not await admitted(f"/ws/episodes/{other_ep}/?share={token}")
        assert await admitted(f"/ws/runs/{run.pk}/?share={run_token}")
        assert await admitted(f"/ws/episodes/{ep}/?share={run_token}")
        assert not await admitted(f"/ws/episodes/{other_ep}/?share={run_token}")
        assert not await admitted(f"/ws/episodes/{ep}/?share={token[:-2]}xx")

        # Revoking a link closes the connections that use it.
        comm = connect(f"/ws/episodes/{ep}/?share={token}")
        assert (await comm.connect())[0]
        await database_sync_to_async(sharing.revoke)(link, owner)
        closed = await comm.receive_output(TIMEOUT)
        assert closed == {"type": "websocket.close", "code": 4403}
        assert not await admitted(f"/ws/episodes/{ep}/?share={token}")

    async_to_sync(scenario)()


def test_a_broadcast_failure_never_fails_the_run(run, monkeypatch, caplog):
    """The sink's work is committed even when building or sending the live message blows up."""
    sink, ep = StartedEpisodeFactory(run=run)

    def broken(*args, **kwargs):
        raise ConnectionError("redis is gone")

    monkeypatch.setattr(live.broadcaster, "publish", broken)
    sink.call_recorded(ep, CallRecordFactory(seq=1))
    sink.episode_finished(ep, EpisodeResultFactory(n_calls=1))
    assert PrimitiveCall.objects.filter(episode_id=ep).count() == 1
    assert "live broadcast for run" in caplog.text
