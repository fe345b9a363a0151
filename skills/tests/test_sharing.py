"""Share links to skills: a minimal read-only page."""

import pytest
from django.test import Client

from skills.models import Skill
from testing.sharing import make_link

pytestmark = pytest.mark.django_db


def test_it_shares_a_skill_as_a_minimal_read_only_page(owner_client):
    skill = Skill.objects.create(
        name="top-face centring",
        description="Grasp at the top face's centre.",
        kind="grasp constraint",
        code_sketch="center = top_face.mean(axis=0)",
        status="approved",
    )
    path = make_link(owner_client, "skill", skill.pk)
    html = Client().get(path).content.decode()
    assert "top-face centring" in html and "center = top_face.mean(axis=0)" in html and 'id="nav-launch"' not in html
