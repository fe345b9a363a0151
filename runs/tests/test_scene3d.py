"""The episode's 3D view (worker.robot.scene3d): kept by the sink beside the keyframes, offered on the trace
page and in the API, and served after the recording's access checks (owner, share link; nobody else)."""

import pytest
from django.test import Client

from accounts.tests.factories import UserFactory
from testing.sharing import make_link
from worker.robot import scene3d as s3

from .scene3d import scene3d_episode

pytestmark = pytest.mark.django_db


def test_the_3d_view_is_kept_offered_and_served_to_the_owner_and_a_share_link_only(owner_client, user, api):
    episode = scene3d_episode(user)
    assert episode.success, episode.error
    name = episode.scene3d.name
    assert name.startswith(f"runs/{episode.run_id}/episodes/{episode.pk}/") and name.endswith("/scene3d.json.gz")
    url = f"/episodes/{episode.pk}/scene3d.json.gz"

    # The trace page offers the section (the data and three.js load only when it is opened).
    html = owner_client.get(f"/episodes/{episode.pk}/").content.decode()
    assert 'id="scene3d"' in html and f'data-src="{url}"' in html and "js/scene3d.js" in html
    assert 'id="scene3d-download"' in html and "three.module" not in html

    answer = owner_client.get(url)
    assert answer.status_code == 200 and answer["Content-Type"] == "application/gzip"
    doc = s3.load(answer.content)
    assert doc["schema"] == s3.SCHEMA and not doc["error"]
    kinds = {c["kind"] for c in doc["clouds"]}
    assert kinds == {"scene", "mask"} and doc["grasps"] and doc["targets"] and doc["plans"]
    assert [g["selected"] for g in doc["grasps"]] == [False, True]
    assert len(doc["samples"]["t"]) > 20

    # The API names it, for the same credentials.
    listed = api.get(f"/api/episodes/{episode.pk}/").json()
    assert listed["scene3d_url"].endswith(f"/api/episodes/{episode.pk}/scene3d/")
    through_api = api.get(listed["scene3d_url"])
    assert through_api.status_code == 200 and through_api.content == answer.content

    stranger = Client()
    stranger.force_login(UserFactory(username="stranger"))
    assert stranger.get(url).status_code == 404
    assert Client().get(url).status_code == 302  # to the login page

    token = make_link(owner_client, "episode", episode.pk).split("/")[2]
    page = Client().get(f"/s/{token}/episodes/{episode.pk}/").content.decode()
    assert f'data-src="/s/{token}/episodes/{episode.pk}/scene3d.json.gz"' in page
    shared = Client().get(f"/s/{token}/episodes/{episode.pk}/scene3d.json.gz")
    assert shared.status_code == 200 and shared.content == answer.content
    other = scene3d_episode(UserFactory(username="other-owner"), seed=102)
    assert Client().get(f"/s/{token}/episodes/{other.pk}/scene3d.json.gz").status_code == 404


def test_an_episode_without_a_3d_view_offers_none(owner_client, api, traced_run):
    episode = traced_run.episodes.get()
    assert 'id="scene3d"' not in owner_client.get(f"/episodes/{episode.pk}/").content.decode()
    assert owner_client.get(f"/episodes/{episode.pk}/scene3d.json.gz").status_code == 404
    assert api.get(f"/api/episodes/{episode.pk}/").json()["scene3d_url"] == ""
    assert api.get(f"/api/episodes/{episode.pk}/scene3d/").status_code == 404


def test_the_3d_view_downloads_as_a_rerun_recording_the_viewer_verifies(owner_client, user, api, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from worker.robot.rrd import RERUN_VERSION

    episode = scene3d_episode(user)
    url = f"/episodes/{episode.pk}/episode.rrd"
    html = owner_client.get(f"/episodes/{episode.pk}/").content.decode()
    assert f'href="{url}"' in html and f"Rerun {RERUN_VERSION}" in html
    answer = owner_client.get(url)
    assert answer.status_code == 200 and answer.content[:4] == b"RRF2"
    assert answer["Content-Disposition"] == f'attachment; filename="episode-{episode.pk}.rrd"'
    through_api = api.get(f"/api/episodes/{episode.pk}/rrd/")
    assert through_api.status_code == 200 and through_api.content[:4] == b"RRF2"
    rrd = tmp_path / "episode.rrd"
    rrd.write_bytes(answer.content)
    rerun = Path(sys.executable).with_name("rerun")
    verified = subprocess.run([str(rerun), "rrd", "verify", str(rrd)], capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    printed = subprocess.run([str(rerun), "rrd", "print", str(rrd)], capture_output=True, text=True, timeout=120)
    entities = ("world/clouds/call_", "world/masks/call_", "world/grasps/call_", "world/targets/arm0")
    for entity in (*entities, "world/plans/arm0", "world/executed/arm0", "robot/arm0/joint1"):
        assert entity in printed.stdout, entity

    stranger = Client()
    stranger.force_login(UserFactory(username="eve"))
    assert stranger.get(url).status_code == 404
    token = make_link(owner_client, "episode", episode.pk).split("/")[2]
    assert Client().get(f"/s/{token}/episodes/{episode.pk}/episode.rrd").status_code == 200
