"""Skill text rendered as sanitised markdown on the skill pages, and the admin's review queue with its
stages and counts."""

import pytest
from django.urls import reverse

from skills.models import Skill

from .factories import SkillFactory

pytestmark = pytest.mark.django_db


def test_skill_text_is_rendered_markdown_not_raw_and_never_raw_html(admin_client):
    skill = SkillFactory(
        description="Use the **top face** of `cube`.",
        symptom="- gripper closes beside it\n- <script>alert(1)</script>",
        repair_strategy="1. find the face\n2. take *x, y*",
    )
    page = admin_client.get(reverse("skills:detail", args=[skill.pk])).content.decode()
    assert "<strong>top face</strong>" in page and "<code>cube</code>" in page and "**top face**" not in page
    assert "<li>gripper closes beside it</li>" in page and "<em>x, y</em>" in page
    assert "<script>alert(1)</script>" not in page
    listing = admin_client.get(reverse("skills:list")).content.decode()
    assert "Use the top face of cube." in listing and "**top face**" not in listing


def test_the_review_queue_has_stages_and_counts(admin_client):
    SkillFactory(name="ready-one", status=Skill.Status.VALIDATED)
    SkillFactory(name="fresh-one", status=Skill.Status.PROPOSED)
    SkillFactory(name="fresh-two", status=Skill.Status.PROPOSED)
    SkillFactory(name="done-one", status=Skill.Status.APPROVED)
    url = reverse("admin:skills_skillreview_changelist")
    page = admin_client.get(url).content.decode()
    assert 'id="review-counts"' in page
    assert "<strong>1</strong> awaiting approval" in page and "<strong>2</strong> awaiting validation" in page
    assert "ready-one" in page and "fresh-one" not in page  # approval is the default stage
    proposed = admin_client.get(url, {"stage": "validation"}).content.decode()
    assert "fresh-one" in proposed and "fresh-two" in proposed and "ready-one" not in proposed
    everything = admin_client.get(url, {"stage": "open"}).content.decode()
    assert all(n in everything for n in ("ready-one", "fresh-one", "fresh-two")) and "done-one" not in everything
