"""Episode playback: the recording is stored with its episode, the trace page shows the player with the
call spans, and the video is served (with byte ranges) after the keyframes' access checks."""

import pytest
from django.test import Client

from accounts.tests.factories import UserFactory
from runs.models import Episode
from testing.sharing import make_link

from .playback import CALLS, recorded_episode

pytestmark = pytest.mark.django_db


def test_the_sink_keeps_the_recording_and_the_trace_page_shows_the_player(owner_client, user):
    _, ep = recorded_episode(user)
    episode = Episode.objects.get(pk=ep)
    assert episode.recording.name.endswith("/recording.mp4")
    index = episode.recording_index
    assert [c[0] for c in index["calls"]] == list(range(1, len(CALLS) + 1))
    assert index["fps"] == 2.0 and len(index["frames"]) >= 6
    html = owner_client.get(f"/episodes/{ep}/").content.decode()
    assert 'id="player-video"' in html and f'src="/episodes/{ep}/recording.mp4"' in html
    assert 'id="player-scrub"' in html and 'id="player-prev"' in html and 'id="player-config"' in html
    assert "js/player.js" in html


def test_an_episode_without_recording_has_no_player(owner_client, traced_run):
    html = owner_client.get(f"/episodes/{traced_run.episodes.get().pk}/").content.decode()
    assert 'id="player"' not in html


def test_the_video_is_served_to_the_owner_and_a_share_link_but_not_to_others(owner_client, user):
    run, ep = recorded_episode(user)
    url = f"/episodes/{ep}/recording.mp4"
    whole = owner_client.get(url)
    assert whole.status_code == 200 and whole["Content-Type"] == "video/mp4" and whole["Accept-Ranges"] == "bytes"
    body = whole.content
    assert body[4:8] == b"ftyp"
    part = owner_client.get(url, HTTP_RANGE="bytes=10-99")
    assert part.status_code == 206 and part.content == body[10:100]
    assert part["Content-Range"] == f"bytes 10-99/{len(body)}"
    assert owner_client.get(url, HTTP_RANGE=f"bytes={len(body)}-").status_code == 416

    stranger = Client()
    stranger.force_login(UserFactory(username="stranger"))
    assert stranger.get(url).status_code == 404
    assert Client().get(url).status_code == 302  # to the login page

    token = make_link(owner_client, "episode", ep).split("/")[2]
    page = Client().get(f"/s/{token}/episodes/{ep}/").content.decode()
    assert f'src="/s/{token}/episodes/{ep}/recording.mp4"' in page
    shared = Client().get(f"/s/{token}/episodes/{ep}/recording.mp4")
    assert shared.status_code == 200 and shared.content == body
    # The link covers that episode only: another recorded episode stays closed.
    _, other = recorded_episode(UserFactory(username="other-owner"))
    assert Client().get(f"/s/{token}/episodes/{other}/recording.mp4").status_code == 404


def test_the_rest_api_gives_the_recording_index_and_serves_the_video_to_token_holders_only(api, user, traced_run):
    _, ep = recorded_episode(user)
    body = api.get(f"/api/episodes/{ep}/").json()
    recording = body["recording"]
    assert recording["url"].endswith(f"/api/episodes/{ep}/recording/")
    assert [c[0] for c in recording["calls"]] == list(range(1, len(CALLS) + 1))
    assert recording["fps"] == 2.0 and len(recording["frames"]) >= 6 and recording["truncated"] is False
    video = api.get(recording["url"])
    assert video.status_code == 200 and video["Content-Type"] == "video/mp4"
    whole = b"".join(video.streaming_content) if video.streaming else video.content
    assert whole[4:8] == b"ftyp"
    part = api.get(recording["url"], HTTP_RANGE="bytes=0-9")
    assert part.status_code == 206 and part.content == whole[:10]

    # An episode without a recording says so: null, and its video is a 404.
    plain = traced_run.episodes.get().pk
    assert api.get(f"/api/episodes/{plain}/").json()["recording"] is None
    assert api.get(f"/api/episodes/{plain}/recording/").status_code == 404
    # Another user's token sees neither.
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=UserFactory(username='eve')).key}")
    assert stranger.get(f"/api/episodes/{ep}/recording/").status_code == 404
    assert APIClient().get(f"/api/episodes/{ep}/recording/").status_code in (401, 403)


def test_recording_is_a_launch_setting_on_by_default_in_the_browser_and_off_by_default_in_the_api(
    owner_client, api, tasks
):
    from runs.models import Run

    page = owner_client.get("/runs/new/").content.decode()
    assert 'name="recording"' in page and 'id="id_recording" checked' in page
    assert 'name="recording"' in owner_client.get("/experiments/new/").content.decode()
    form = {"task": "robosuite:Lift", "program_source": "starter", "seeds": "1", "wall_seconds": "60"}
    owner_client.post("/runs/new/", {**form, "recording": "on"})
    owner_client.post("/runs/new/", form)  # the box unticked
    assert [r.settings["recording"] for r in Run.objects.order_by("pk")] == [True, False]

    assert api.post("/api/runs/", {"task": "robosuite:Lift", "seeds": [1]}, format="json").status_code == 201
    assert api.post("/api/runs/", {"task": "robosuite:Lift", "seeds": [2], "recording": True}, format="json").json()
    bad = api.post("/api/runs/", {"task": "robosuite:Lift", "seeds": [3], "recording": "sometimes"}, format="json")
    assert bad.status_code == 400 and "recording" in bad.json()
    assert [r.settings["recording"] for r in Run.objects.order_by("pk")][2:] == [False, True]
