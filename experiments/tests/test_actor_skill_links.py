"""The actor page links the skills its agent proposed to their pages in the library."""

import pytest

from runs.models import Actor
from skills.models import Skill
from skills.tests.factories import SkillFactory

from .factories import ExperimentFactory

pytestmark = pytest.mark.django_db


def test_proposed_skills_on_the_actor_page_link_to_their_skill_pages(admin_client):
    run = ExperimentFactory()
    actor = run.actors.get()
    Actor.objects.filter(pk=actor.pk).update(proposed_skills=[{"name": "top-face-grasp"}, {"name": "not-stored-yet"}])
    skill = SkillFactory(name="top-face-grasp", status=Skill.Status.PROPOSED, source_run=run)
    page = admin_client.get(actor.get_absolute_url()).content.decode()
    assert f'<a href="{skill.get_absolute_url()}" class="proposed-skill">top-face-grasp</a>' in page
    assert "not-stored-yet <small" in page
