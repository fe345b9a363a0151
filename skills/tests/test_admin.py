"""The admin: the review queue of validated skills (evidence, sketch, diff), one-by-one and bulk decisions."""

import pytest
from django.urls import reverse

from runs.models import Episode, Keyframe
from runs.tests.factories import TaskFactory
from skills.exchange import import_skill_markdown
from skills.models import Skill

from .factories import AdmissionRunFactory, SkillFactory, SkillValidationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def validated():
    """A validated v2 of an approved skill, with admission evidence: seed 105 flipped, 101 kept."""
    task = TaskFactory(key="robosuite:Lift")
    parent = SkillFactory(
        name="cube-top-face", version=1, code_sketch="def centre(points):\n    return points.mean(axis=0)"
    )
    skill = SkillFactory(
        name="cube-top-face",
        version=2,
        parent=parent,
        status=Skill.Status.VALIDATED,
        source_task=task,
        change_note="use the top face only",
        seeds_flipped=[105],
        pass_rate_before=0.5,
        pass_rate_after=1.0,
        code_sketch="def centre(points):\n"
        "    top = points[points[:, 2] > points[:, 2].max() - {{BAND}}]\n"
        "    return top.mean(axis=0)",
        placeholders={"BAND": {"default": 0.006, "doc": "m"}},
    )
    run = AdmissionRunFactory(task=task, outcomes={"before": {105: False, 101: True}, "after": {105: True, 101: True}})
    episodes = {(e.candidate.index, e.seed): e for e in Episode.objects.filter(run=run).select_related("candidate")}
    frame = Keyframe.objects.create(episode=episodes[(0, 105)], kind="frame", label="final", image="runs/x/final.jpg")
    validation = SkillValidationFactory(skill=skill, run=run, claimed_seeds=[105], control_seeds=[101])
    validation.outcome, validation.flipped, validation.n_seeds = "admitted", [105], 2
    validation.n_before_success, validation.n_after_success = 1, 2
    validation.results = [
        {
            "seed": s,
            "role": role,
            "parent": None,
            "before": {"episode": episodes[(0, s)].pk, "success": s == 101, "status": episodes[(0, s)].status},
            "after": {"episode": episodes[(1, s)].pk, "success": True, "status": "OK"},
        }
        for s, role in ((105, "claimed"), (101, "control"))
    ]
    validation.save()
    return skill, episodes, frame


def test_the_review_queue_lists_only_validated_skills(admin_client, validated):
    skill, _, _ = validated
    SkillFactory(name="not-yet", status=Skill.Status.PROPOSED)
    page = admin_client.get(reverse("admin:skills_skillreview_changelist")).content.decode()
    assert reverse("admin:skills_skillreview_change", args=[skill.pk]) in page
    assert "not-yet" not in page and "50% → 100%" in page


def test_the_review_page_shows_evidence_keyframes_sketch_and_the_diff_to_the_parent(admin_client, validated):
    skill, episodes, frame = validated
    page = admin_client.get(reverse("admin:skills_skillreview_change", args=[skill.pk])).content.decode()
    for index, seed in ((0, 105), (1, 105), (0, 101)):
        assert reverse("runs:episode", args=[episodes[(index, seed)].pk]) in page
    assert reverse("runs:keyframe", args=[frame.pk]) in page
    assert 'class="evidence-row flipped"' in page and "success 1/2 before" in page
    assert '<div class="highlight"' in page and "BAND" in page  # Pygments, inline styles
    assert "use the top face only" in page and "+    top = points[points[:, 2]" in page.replace("&gt;", ">")
    assert 'value="approve"' in page and 'value="reject"' in page


def test_a_reviewer_approves_with_a_note_from_the_review_page(admin_client, validated):
    skill, _, _ = validated
    response = admin_client.post(
        reverse("admin:skills_skillreview_decide", args=[skill.pk]),
        {"decision": "approve", "note": "checked seeds 105 and 101"},
    )
    assert response.status_code == 302 and response["Location"] == reverse("admin:skills_skillreview_changelist")
    skill.refresh_from_db()
    assert skill.status == Skill.Status.APPROVED and skill.status_reason == "checked seeds 105 and 101"
    assert skill.parent.status == Skill.Status.RETIRED  # superseded
    again = admin_client.post(
        reverse("admin:skills_skillreview_decide", args=[skill.pk]), {"decision": "reject"}, follow=True
    )
    assert "v2 is approved; it can move to retired, not to rejected" in again.content.decode()
    skill.refresh_from_db()
    assert skill.status == Skill.Status.APPROVED


def test_bulk_actions_decide_what_they_may_and_say_why_not_for_the_rest(admin_client, validated):
    skill, _, _ = validated
    other = SkillFactory(name="other", status=Skill.Status.VALIDATED)
    proposed = SkillFactory(name="proposed", status=Skill.Status.PROPOSED)
    response = admin_client.post(
        reverse("admin:skills_skill_changelist"),
        {"action": "reject_selected", "_selected_action": [skill.pk, other.pk]},
        follow=True,
    )
    assert "Rejected 2: cube-top-face v2, other v1" in response.content.decode()
    response = admin_client.post(
        reverse("admin:skills_skill_changelist"),
        {"action": "approve_selected", "_selected_action": [proposed.pk]},
        follow=True,
    )
    assert "v1 is proposed; only a validated skill can be approved" in response.content.decode()
    rejected = Skill.objects.filter(status=Skill.Status.REJECTED)
    assert set(rejected.values_list("rejection_stage", flat=True)) == {"review"}
    proposed.refresh_from_db()
    assert proposed.status == Skill.Status.PROPOSED


def test_only_staff_with_change_permission_decide(client, django_user_model, validated):
    skill, _, _ = validated
    url = reverse("admin:skills_skillreview_decide", args=[skill.pk])
    assert client.post(url, {"decision": "approve"}).status_code == 302  # to the admin login
    django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    client.login(username="viewer", password="pw")
    assert client.post(url, {"decision": "approve"}).status_code == 403
    skill.refresh_from_db()
    assert skill.status == Skill.Status.VALIDATED


def test_a_proposed_skill_is_edited_under_the_proposal_rules_and_a_decided_one_is_frozen(admin_client):
    proposed = SkillFactory(name="editable", status=Skill.Status.PROPOSED)
    url = reverse("admin:skills_skill_change", args=[proposed.pk])
    form = admin_client.get(url).content.decode()
    assert 'name="description"' in form and 'name="claimed_seeds"' in form
    data = {
        "title": "",
        "description": "",
        "kind": "localisation",
        "symptom": "",
        "trace_signals": "{}",
        "when_to_apply": "",
        "when_not_to_apply": "",
        "repair_strategy": "x",
        "code_sketch": "",
        "placeholders": "{}",
        "notes": "",
        "embodiment": "",
        "benchmark": "",
        "task_keys": "[]",
        "validated_context": "",
        "change_note": "",
        "source_task": "",
        "before_program": "",
        "after_program": "",
        "claimed_seeds": "[-3]",
        "control_seeds": "[]",
    }
    page = admin_client.post(url, data).content.decode()
    assert "a skill needs a description" in page or "non-negative" in page
    proposed.refresh_from_db()
    assert proposed.description != ""
    data.update(description="Better words.", claimed_seeds="[105]", trace_signals='{"statuses": ["grasp_empty"]}')
    assert admin_client.post(url, data).status_code == 302
    proposed.refresh_from_db()
    assert proposed.description == "Better words." and proposed.claimed_seeds == [105]
    assert proposed.trace_signals == {"statuses": ["GRASP_EMPTY"]}

    approved = SkillFactory(name="frozen")
    form = admin_client.get(reverse("admin:skills_skill_change", args=[approved.pk])).content.decode()
    assert 'name="description"' not in form


def test_an_imported_skill_without_a_kind_gets_one_from_the_reviewer_before_approval(admin_client):
    skill = import_skill_markdown("---\nname: no-kind-said\ndescription: d\n---\n# Notes\n\nBack off first.\n")
    assert skill.kind == "" and skill.guidance == "# Notes\n\nBack off first."
    Skill.objects.filter(pk=skill.pk).update(status=Skill.Status.VALIDATED)  # as admission would leave it
    review = admin_client.get(reverse("admin:skills_skillreview_change", args=[skill.pk])).content.decode()
    assert "No kind yet" in review and "<h3>Notes</h3>" in review  # the guidance, rendered for the reviewer
    decide = reverse("admin:skills_skillreview_decide", args=[skill.pk])
    refused = admin_client.post(decide, {"decision": "approve"}, follow=True).content.decode()
    assert "has no kind: set its kind" in refused
    skill.refresh_from_db()
    assert skill.status == Skill.Status.VALIDATED

    change = reverse("admin:skills_skill_change", args=[skill.pk])
    form = admin_client.get(change).content.decode()
    assert 'name="kind"' in form and 'name="description"' not in form  # the kind alone is still open
    assert admin_client.post(change, {"kind": "recovery"}).status_code == 302
    skill.refresh_from_db()
    assert skill.kind == Skill.Kind.RECOVERY and skill.description == "d"
    admin_client.post(decide, {"decision": "approve"})
    skill.refresh_from_db()
    assert skill.status == Skill.Status.APPROVED
    form = admin_client.get(change).content.decode()
    assert 'name="kind"' not in form  # decided content is frozen again
