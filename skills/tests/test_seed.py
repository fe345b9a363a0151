"""The seed library: markdown files under skills/seed/, loaded as approved skills by load_seed_skills."""

import io
import shutil

import pytest
from django.core.management import CommandError, call_command

from skills.exchange import SEED_DIR, install_seed_skills
from skills.markdown import parse_skill_markdown
from skills.models import Skill
from skills.policy import check_skill_code
from worker.engine import EngineSettings, run_episode
from worker.events import MemorySink
from worker.library.sketch import fill_sketch

pytestmark = pytest.mark.django_db


def seed_drafts():
    return {d.name: d for d in (parse_skill_markdown(p.read_text()).cleaned() for p in sorted(SEED_DIR.glob("*.md")))}


def test_the_seed_library_covers_localisation_grasp_transport_drawer_and_recovery():
    drafts = seed_drafts()
    kinds = {d.kind for d in drafts.values()}
    assert {"localisation", "grasp_constraint", "motion_primitive", "recovery", "debugging_workflow"} <= kinds
    assert {
        "cube-top-face-localisation",
        "top-down-grasp-yaw-nearest-equivalent",
        "approach-grasp-lift-width-check",
        "drawer-push-closed",
        "relocalise-and-retry-grasp",
        "trace-triage-first-failing-call",
    } <= set(drafts)
    for draft in drafts.values():
        assert check_skill_code(draft.code_sketch, draft.placeholders) == [], draft.name
        assert draft.symptom and draft.when_to_apply and draft.when_not_to_apply and draft.validated_context, draft.name


def test_load_seed_skills_is_idempotent_and_marks_them_approved_seeds():
    out = io.StringIO()
    call_command("load_seed_skills", stdout=out)
    n = len(list(SEED_DIR.glob("*.md")))
    assert f"seed skills: {n} created, 0 updated, 0 unchanged" in out.getvalue()
    assert Skill.objects.filter(status=Skill.Status.APPROVED, provenance=Skill.Provenance.SEED, version=1).count() == n
    before = list(Skill.objects.order_by("pk").values_list("pk", "content_changed_at"))
    out = io.StringIO()
    call_command("load_seed_skills", stdout=out)
    assert f"0 created, 0 updated, {n} unchanged" in out.getvalue()
    assert list(Skill.objects.order_by("pk").values_list("pk", "content_changed_at")) == before


def test_a_changed_seed_file_updates_its_skill_and_a_retired_seed_stays_retired(tmp_path):
    for path in SEED_DIR.glob("*.md"):
        shutil.copy(path, tmp_path / path.name)
    install_seed_skills(tmp_path)
    localisation = tmp_path / "cube-top-face-localisation.md"
    localisation.write_text(localisation.read_text().replace("## When to apply\n", "## When to apply\n\n- Blocks.\n"))
    drawer = Skill.objects.get(name="drawer-push-closed")
    drawer.change_status(Skill.Status.RETIRED, reason="replaced by a newer drawer skill")
    drawer_file = tmp_path / "drawer-push-closed.md"
    drawer_file.write_text(drawer_file.read_text() + "\nA new line.\n")
    report = install_seed_skills(tmp_path)
    assert report.updated == ["cube-top-face-localisation"]
    assert report.skipped == ["drawer-push-closed: the seed skill is retired"]
    assert Skill.objects.get(name="cube-top-face-localisation").when_to_apply.startswith("- Blocks.")
    assert Skill.objects.get(name="drawer-push-closed").status == Skill.Status.RETIRED


def test_a_broken_seed_file_stops_the_command_with_its_name(tmp_path):
    (tmp_path / "bad.md").write_text(
        "---\nname: bad\ndescription: d\nkind: recovery\n---\n\n## Technique\n\n```python\nx = env.sim.data.qpos\n```\n"
    )
    with pytest.raises(CommandError, match="bad.md fails the API-policy check"):
        call_command("load_seed_skills", "--dir", str(tmp_path), stdout=io.StringIO())
    (tmp_path / "bad.md").write_text("no front matter")
    with pytest.raises(CommandError, match="bad.md: the file has no front matter"):
        call_command("load_seed_skills", "--dir", str(tmp_path), stdout=io.StringIO())
    with pytest.raises(CommandError, match="is not a directory"):
        call_command("load_seed_skills", "--dir", str(tmp_path / "missing"))
    assert not Skill.objects.exists()


def test_the_seed_sketches_compose_into_a_camera_only_program_that_lifts_the_cube(lift_spec):
    drafts = seed_drafts()
    parts = [
        fill_sketch(drafts[name].code_sketch, drafts[name].placeholders)
        for name in (
            "cube-top-face-localisation",
            "top-down-grasp-yaw-nearest-equivalent",
            "approach-grasp-lift-width-check",
            "relocalise-and-retry-grasp",
        )
    ]
    program = "\n\n".join(parts) + (
        '\n\nwidth = grasp_with_retries(lambda: locate_box("agentview"), grasp_and_lift, grasp_quaternion)\n'
        'print("holding", round(width, 4))\n'
    )
    for seed in (105, 3):
        result = run_episode(lift_spec, program, seed, MemorySink(), EngineSettings(trace=False), None)
        assert result.success, (seed, result.status, result.error)
        assert "holding 0.04" in result.stdout


@pytest.mark.slow
def test_the_drawer_sketch_alone_closes_the_libero_drawer():
    from worker.sim.catalog import get_task

    draft = seed_drafts()["drawer-push-closed"]
    program = (
        fill_sketch(draft.code_sketch, draft.placeholders) + '\n\nprint("pushed", round(push_drawer_closed(), 3))\n'
    )
    spec = get_task(draft.task_keys[0])
    for seed in (51, 52, 53):
        result = run_episode(spec, program, seed, MemorySink(), EngineSettings(trace=False), None)
        assert result.success, (seed, result.status, result.error)
        assert "pushed 0." in result.stdout
