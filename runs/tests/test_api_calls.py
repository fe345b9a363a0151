"""REST: calls and keyframes — order, live following, 400s on bad filters, images, visibility."""

import pytest

from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_it_lists_calls_in_order_with_their_keyframes_and_follows_a_live_episode(api, traced_run):
    ep = traced_run.episodes.get()
    calls = api.get("/api/calls/", {"episode": ep.pk}).json()["results"]
    assert [(c["seq"], c["primitive"], c["status"]) for c in calls] == [
        (1, "get_observation", "OK"),
        (2, "move_to_pose", "NOT_REACHED"),
    ]
    assert calls[1]["keyframes"][0]["image_url"].endswith(f"/api/keyframes/{calls[1]['keyframes'][0]['id']}/image/")
    assert [c["seq"] for c in api.get("/api/calls/", {"episode": ep.pk, "after_seq": 1}).json()["results"]] == [2]
    assert api.get("/api/calls/", {"episode": ep.pk, "status": "NOT_REACHED"}).json()["count"] == 1
    assert api.get(f"/api/calls/{calls[0]['id']}/").json()["args"] == {"camera_names": ["agentview"]}


@pytest.mark.parametrize(
    "url, params, field",
    [
        ("/api/calls/", {"episode": "abc"}, "episode"),
        ("/api/calls/", {"after_seq": "1.5"}, "after_seq"),
        ("/api/episodes/", {"success": "maybe"}, "success"),
        ("/api/candidates/", {"run": "x"}, "run"),
    ],
)
def test_it_answers_bad_filters_with_400_and_the_field(api, traced_run, url, params, field):
    response = api.get(url, params)
    assert response.status_code == 400 and field in response.json()


def test_it_serves_keyframe_images(api, traced_run):
    kf = api.get("/api/keyframes/", {"episode": traced_run.episodes.get().pk}).json()["results"][0]
    image = api.get(f"/api/keyframes/{kf['id']}/image/")
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
    assert b"".join(image.streaming_content)[:2] == b"\xff\xd8"


def test_it_hides_other_peoples_traces(api, traced_run):
    from rest_framework.test import APIClient

    stranger = APIClient()
    stranger.force_authenticate(UserFactory(username="stranger"))
    ep = traced_run.episodes.get()
    call = ep.calls.first()
    kf = ep.keyframes.first()
    for url in (
        f"/api/episodes/{ep.pk}/",
        f"/api/calls/{call.pk}/",
        f"/api/keyframes/{kf.pk}/",
        f"/api/keyframes/{kf.pk}/image/",
        f"/api/candidates/{ep.candidate_id}/",
    ):
        assert stranger.get(url).status_code == 404, url
    assert stranger.get("/api/calls/", {"episode": ep.pk}).json()["count"] == 0
    assert api.get(f"/api/episodes/{ep.pk}/").status_code == 200
