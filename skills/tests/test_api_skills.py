"""REST endpoints of the skill library: list, detail, approve/reject for staff."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from skills.models import Skill

from .factories import SkillFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(django_user_model):
    """A signed-in researcher: the library is readable by every account, never anonymously."""
    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_user("reader"))
    return client


def test_the_library_needs_an_account():
    assert APIClient().get(reverse("skills_api:list")).status_code in (401, 403)


@pytest.fixture
def staff_api(django_user_model):
    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_user("reviewer", is_staff=True))
    return client


def test_it_lists_skills_with_pagination_and_filters(api):
    for i in range(3):
        SkillFactory(name=f"cube-{i}")
    SkillFactory(name="drawer", kind=Skill.Kind.MOTION_PRIMITIVE, description="Pull the drawer handle.", symptom="")
    SkillFactory(name="waiting", status=Skill.Status.PROPOSED)
    body = api.get(reverse("skills_api:list"), {"page_size": 2}).json()
    assert body["count"] == 5 and len(body["results"]) == 2 and body["next"]
    first = body["results"][0]
    assert first["name"] == "cube-0" and first["url"] == reverse("skills:detail", args=[first["id"]])
    assert {"status", "kind", "embodiment", "pass_rate_after", "usage_count", "win_count"} <= set(first)

    def names(**params):
        return [s["name"] for s in api.get(reverse("skills_api:list"), params).json()["results"]]

    assert names(status="proposed") == ["waiting"]
    assert names(kind="motion_primitive") == ["drawer"]
    assert names(q="drawer handle") == ["drawer"]
    assert names(embodiment="Sawyer") == []


def test_bad_filters_get_a_400_with_field_messages(api):
    response = api.get(reverse("skills_api:list"), {"status": "flying", "kind": "x", "q": "y" * 201})
    assert response.status_code == 400
    assert set(response.json()) == {"status", "kind", "q"}
    assert '"flying" is not a valid choice.' in response.json()["status"][0]


def test_the_detail_has_the_full_skill_and_unknown_ids_are_404(api):
    v1 = SkillFactory(name="cube", version=1, status=Skill.Status.RETIRED)
    v2 = SkillFactory(name="cube", version=2, parent=v1, placeholders={"BAND": {"default": 0.006, "doc": "m"}})
    body = api.get(reverse("skills_api:detail", args=[v2.pk])).json()
    assert body["parent"] == v1.pk and body["placeholders"] == {"BAND": {"default": 0.006, "doc": "m"}}
    assert body["trace_signals"] == {"statuses": ["GRASP_EMPTY"], "primitives": ["close_gripper"]}
    assert [v["version"] for v in body["versions"]] == [2, 1] and body["validations"] == []
    assert api.get(reverse("skills_api:detail", args=[999])).status_code == 404


def test_staff_approve_a_validated_skill_and_others_are_refused(api, staff_api, django_user_model):
    skill = SkillFactory(status=Skill.Status.VALIDATED)
    url = reverse("skills_api:approve", args=[skill.pk])
    assert api.post(url).status_code == 403
    user = APIClient()
    user.force_authenticate(django_user_model.objects.create_user("researcher"))
    assert user.post(url).status_code == 403
    skill.refresh_from_db()
    assert skill.status == Skill.Status.VALIDATED

    response = staff_api.post(url, {"note": "evidence checked"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "approved"
    skill.refresh_from_db()
    assert skill.status_reason == "evidence checked" and skill.reviewed_by.username == "reviewer"

    conflict = staff_api.post(url, {}, format="json")
    assert conflict.status_code == 409 and "only a validated skill can be approved" in conflict.json()["detail"]
    assert staff_api.post(reverse("skills_api:approve", args=[999])).status_code == 404


def test_staff_reject_with_a_note_and_bad_input_is_a_400(staff_api):
    skill = SkillFactory(status=Skill.Status.PROPOSED)
    url = reverse("skills_api:reject", args=[skill.pk])
    response = staff_api.post(url, {"note": "x" * 2001}, format="json")
    assert response.status_code == 400 and "note" in response.json()
    assert staff_api.post(url, {"note": ["a", "b"]}, format="json").status_code == 400
    skill.refresh_from_db()
    assert skill.status == Skill.Status.PROPOSED
    response = staff_api.post(url, {"note": "duplicate"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    assert response.json()["rejection_stage"] == "review" and response.json()["status_reason"] == "duplicate"
