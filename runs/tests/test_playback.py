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
