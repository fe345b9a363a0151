"""Skill evidence says which perception mode its admission episodes ran with (realistic or oracle)."""

import pytest
from django.urls import reverse

from runs.models import Run

from .factories import SkillValidationFactory

pytestmark = pytest.mark.django_db


def test_skill_evidence_shows_the_mode_its_episodes_ran_with(api, owner_client, tasks):
    validation = SkillValidationFactory()
    Run.objects.filter(pk=validation.run_id).update(perception_mode="oracle")
    skill = validation.skill
    validations = api.get(f"/api/skills/{skill.pk}/").json()["validations"]
    assert [v["perception_mode"] for v in validations] == ["oracle"]
    page = owner_client.get(reverse("skills:detail", args=[skill.pk])).content.decode()
    assert f'id="evidence-perception-{validation.pk}">oracle<' in page
