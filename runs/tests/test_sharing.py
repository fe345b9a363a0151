"""Share links: signed, unguessable, read-only, revocable; they open their target and nothing else."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.tests.factories import UserFactory
from sharing import services as sharing
from sharing.models import ShareLink
from testing.sharing import make_link

from .factories import RunFactory, StartedEpisodeFactory

pytestmark = pytest.mark.django_db


def test_it_makes_a_link_that_opens_the_run_read_only_without_login(owner_client, traced_run):
    path = make_link(owner_client, "run", traced_run.pk)
    token = path.split("/")[2]
    link = ShareLink.objects.get()
    # Stored hashed; 256 random bits.
    assert token.split(":")[0] not in link.token_hash and len(token.split(":")[0]) >= 40
    page = Client().get(path)
    html = page.content.decode()
    assert page.status_code == 200 and f"Run #{traced_run.pk}" in html
    for absent in (
        'id="nav-launch"',
        "/runs/new/",
        "/admin/",
        "Cancel run",
        "Share…",
        'id="share-box"',
        "/accounts/logout/",
    ):
        assert absent not in html
    assert page["X-Robots-Tag"] == "noindex, nofollow" and page["Referrer-Policy"] == "no-referrer"
    ep = traced_run.episodes.get()
    assert f"/s/{token}/episodes/{ep.pk}/" in html  # the run's traces open through the same token
    trace = Client().get(f"/s/{token}/episodes/{ep.pk}/")
    assert trace.status_code == 200 and "move_to_pose" in trace.content.decode()
    kf = ep.keyframes.first()
    assert f"/s/{token}/keyframes/{kf.pk}.jpg" in trace.content.decode()
    assert Client().get(f"/s/{token}/keyframes/{kf.pk}.jpg")["Content-Type"] == "image/jpeg"


def test_a_link_grants_nothing_beyond_its_target(owner_client, user, traced_run, settings):
    other_run = RunFactory(owner=user, seeds=[102])
    _, other_ep = StartedEpisodeFactory(run=other_run)
    ep = traced_run.episodes.get()
    episode_path = make_link(owner_client, "episode", ep.pk)
    token = episode_path.split("/")[2]
    anon = Client()
    assert anon.get(episode_path).status_code == 200
    assert anon.get(f"/s/{token}/episodes/{other_ep}/").status_code == 404
    run_path = make_link(owner_client, "run", other_run.pk)
    run_token = run_path.split("/")[2]
    assert anon.get(f"/s/{run_token}/episodes/{ep.pk}/").status_code == 404  # episode of another run
    kf = ep.keyframes.first()
    assert anon.get(f"/s/{run_token}/keyframes/{kf.pk}.jpg").status_code == 404
    for path in (f"/runs/{traced_run.pk}/", f"/episodes/{ep.pk}/", f"/keyframes/{kf.pk}.jpg", "/runs/new/"):
        assert anon.get(path).status_code == 302  # to the login page: the link set no session
    assert anon.get("/api/runs/").status_code in (401, 403)


def test_tampered_revoked_and_expired_links_are_refused(owner_client, user, traced_run):
    path = make_link(owner_client, "run", traced_run.pk)
    token = path.split("/")[2]
    raw, signature = token.split(":")

    def flip(text):  # change the last character (to one it is not already)
        return text[:-1] + ("B" if text[-1] == "A" else "A")

    assert Client().get(f"/s/{raw}:{flip(signature)}/").status_code == 404
    assert Client().get(f"/s/{flip(raw)}:{signature}/").status_code == 404
    assert Client().get("/s/not-a-token/").status_code == 404

    link = ShareLink.objects.get()
    stranger = Client()
    stranger.force_login(UserFactory(username="stranger"))
    assert stranger.post(f"/s/links/{link.pk}/revoke/").status_code == 404
    assert Client().get(path).status_code == 200

    owner_client.post(f"/s/links/{link.pk}/revoke/", {"next": "/"})
    refused = Client().get(path)
    assert refused.status_code == 410 and "revoked" in refused.content.decode()
    assert Client().get(f"{path}keyframes/{traced_run.episodes.get().keyframes.first().pk}.jpg").status_code == 410

    link2, token2 = sharing.create_link(user, "run", traced_run.pk, expires_in_days=1)
    ShareLink.objects.filter(pk=link2.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Client().get(f"/s/{token2}/").status_code == 410


def test_only_people_who_can_read_a_run_can_share_it(traced_run):
    stranger = Client()
    stranger.force_login(UserFactory(username="stranger"))
    response = stranger.post("/s/new/", {"kind": "run", "target": traced_run.pk, "next": "/"}, follow=True)
    assert "no run" in " ".join(str(m) for m in response.context["messages"])
    assert not ShareLink.objects.exists()
    assert Client().post("/s/new/", {"kind": "run", "target": traced_run.pk}).status_code == 302  # login first
    assert not ShareLink.objects.exists()


def test_share_forms_need_a_csrf_token(user, traced_run):
    c = Client(enforce_csrf_checks=True)
    c.force_login(user)
    assert c.post("/s/new/", {"kind": "run", "target": traced_run.pk}).status_code == 403
    assert not ShareLink.objects.exists()


def test_the_account_page_lists_the_links_you_made_with_a_revoke_button(owner_client, user, traced_run):
    link, _ = sharing.create_link(user, "run", traced_run.pk, label="for the reviewer")
    page = owner_client.get("/account/").content.decode()
    assert "Share links you made" in page and f'id="share-link-{link.pk}"' in page and "for the reviewer" in page
    assert f"/s/links/{link.pk}/revoke/" in page
    stranger = Client()
    stranger.force_login(UserFactory(username="stranger"))
    assert f'id="share-link-{link.pk}"' not in stranger.get("/account/").content.decode()
