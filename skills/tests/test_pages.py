"""Skills pages through Django's test client: list with filters, detail, export downloads, import (staff)."""

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from runs.tests.factories import TaskFactory
from skills.markdown import parse_skill_markdown
from skills.models import Skill

from .factories import AdmissionRunFactory, SkillFactory, SkillValidationFactory

pytestmark = pytest.mark.django_db

SKILL_FILE = """---
name: uploaded-skill
description: Uploaded through the skills page.
kind: perception prompt
---

# Uploaded skill

## Technique

Try the colour first.
"""


@pytest.fixture
def client(client, django_user_model):
    """Every page needs a signed-in user (the share links aside)."""
    client.force_login(django_user_model.objects.create_user("researcher", password="pw-not-used"))
    return client


def test_the_library_pages_need_an_account():
    from django.test import Client

    for url in (reverse("skills:list"), reverse("skills:export_library")):
        response = Client().get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_nav_links_to_the_skill_library(client):
    assert reverse("skills:list") in client.get(reverse("runs:list")).content.decode()


def test_the_list_filters_by_status_kind_embodiment_and_text(client):
    SkillFactory(name="cube-top-face", description="Top-face points of the cube.")
    SkillFactory(name="drawer-pull", kind=Skill.Kind.MOTION_PRIMITIVE, description="Pull the drawer.")
    SkillFactory(name="sawyer-only", embodiment="Sawyer", description="Sawyer cube.")
    SkillFactory(name="waiting", status=Skill.Status.PROPOSED, description="A proposal about the cube.")

    def listed(**params):
        page = client.get(reverse("skills:list"), params).content.decode()
        return {name for name in ("cube-top-face", "drawer-pull", "sawyer-only", "waiting") if f"{name} v1" in page}

    assert listed() == {"cube-top-face", "drawer-pull", "sawyer-only", "waiting"}
    assert listed(status="approved", q="top-face points") == {"cube-top-face"}  # every word must match
    assert listed(q="sawyer") == {"sawyer-only"}
    assert listed(kind="motion_primitive") == {"drawer-pull"}
    assert listed(embodiment="panda") == {"cube-top-face", "drawer-pull", "waiting"}
    assert listed(status="flying") == set()
    assert "Select a valid choice" in client.get(reverse("skills:list"), {"status": "flying"}).content.decode()


def test_the_detail_page_shows_the_skill_its_evidence_and_versions(client, admin_client):
    task = TaskFactory(key="robosuite:Lift")
    v1 = SkillFactory(name="cube-top-face", version=1, status=Skill.Status.RETIRED)
    skill = SkillFactory(
        name="cube-top-face",
        version=2,
        parent=v1,
        status=Skill.Status.VALIDATED,
        change_note="top face only",
        when_not_to_apply="Cans.",
        placeholders={"BAND": {"default": 0.006, "doc": "top band, m"}},
        code_sketch="def f(p):\n    return p[p[:, 2] > p[:, 2].max() - {{BAND}}]",
    )
    run = AdmissionRunFactory(task=task, outcomes={"before": {105: False}, "after": {105: True}})
    validation = SkillValidationFactory(skill=skill, run=run, claimed_seeds=[105], control_seeds=[])
    before, after = run.episodes.order_by("candidate__index")
    validation.outcome, validation.flipped, validation.n_seeds, validation.n_after_success = "admitted", [105], 1, 1
    validation.results = [
        {
            "seed": 105,
            "role": "claimed",
            "parent": None,
            "before": {"episode": before.pk, "success": False, "status": "EXCEPTION"},
            "after": {"episode": after.pk, "success": True, "status": "OK"},
        }
    ]
    validation.save()
    page = client.get(skill.get_absolute_url()).content.decode()
    for text in (
        "Cube top face",
        "When NOT to apply",
        "Cans.",
        "{{BAND}}",
        "top band, m",
        "GRASP_EMPTY",
        reverse("runs:episode", args=[before.pk]),
        reverse("runs:episode", args=[after.pk]),
        reverse("runs:detail", args=[run.pk]),
        v1.get_absolute_url(),
        "top face only",
        "flipped",
    ):
        assert text in page, text
    assert reverse("admin:skills_skillreview_change", args=[skill.pk]) not in page  # staff only
    staff_page = admin_client.get(skill.get_absolute_url()).content.decode()
    assert reverse("admin:skills_skillreview_change", args=[skill.pk]) in staff_page
    assert client.get(reverse("skills:detail", args=[999])).status_code == 404


def test_one_skill_and_the_library_download_as_markdown(client):
    skill = SkillFactory(name="cube-top-face")
    SkillFactory(name="not-approved", status=Skill.Status.PROPOSED)
    response = client.get(reverse("skills:export", args=[skill.pk]))
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="cube-top-face-v1.md"'
    assert parse_skill_markdown(response.content.decode()).name == "cube-top-face"
    archive = zipfile.ZipFile(io.BytesIO(client.get(reverse("skills:export_library")).content))
    assert archive.namelist() == ["skills/cube-top-face.md"]
    assert client.get(reverse("skills:export", args=[999])).status_code == 404


def test_import_is_for_staff_and_reports_each_file(client, admin_client):
    url = reverse("skills:import")
    assert client.get(url).status_code == 302  # to the admin login
    assert "Import skills" in admin_client.get(url).content.decode()
    files = [SimpleUploadedFile("good.md", SKILL_FILE.encode()), SimpleUploadedFile("bad.md", b"---\nname: x\n")]
    page = admin_client.post(url, {"files": files}).content.decode()
    skill = Skill.objects.get(name="uploaded-skill")
    assert skill.status == Skill.Status.PROPOSED and skill.proposed_by == "upload by admin"
    assert skill.get_absolute_url() in page and "not imported: the front matter is not closed" in page
    response = admin_client.post(url, {"files": [SimpleUploadedFile("notes.txt", b"x")]})
    assert response.status_code == 400 and "only .md files and .zip archives" in response.content.decode()
    assert admin_client.post(url, {}).status_code == 400
    assert Skill.objects.count() == 1
