"""Exchange: skills as markdown files (YAML front matter + the published ASPIRE section layout)."""

import io
import zipfile

import pytest
import yaml
from django.core.management import CommandError, call_command

from skills.content import SkillDraft, SkillInputError
from skills.exchange import export_library_zip, import_skill_files, import_skill_markdown
from skills.markdown import SkillFormatError, export_skill_markdown, parse_skill_markdown
from skills.models import Skill

from .factories import SkillFactory

pytestmark = pytest.mark.django_db

PUBLISHED_STYLE = """---
name: wrist-turn-when-blocked
description: Turn the last wrist joint a quarter turn when the arm body blocks a descent.
---

# Wrist turn for arm-body blocking

## Symptom

The descent stops well above the target; `move_to_pose` ends NOT_REACHED.

## Technique

Turn joint 7 by a quarter turn after solving IK.

```python
def turned(joints):
    out = np.array(joints)
    out[6] += math.pi / 2
    return out
```

## When to apply

- The approach is right but blocked.

## When NOT to apply

- The tip itself collides.

## Cross-reference rule

Check the other blocking skills first.

## Validated context

Panda, shelves at the side.
"""


def full_skill(**kw):
    return SkillFactory(
        name="cube-localisation",
        version=2,
        title="Cube localisation",
        kind=Skill.Kind.GRASP_CONSTRAINT,
        symptom="Misses.\n\n- bullet one\n- bullet two",
        when_to_apply="Boxes.",
        when_not_to_apply="Cans.",
        repair_strategy="Words first.\n\n```text\nnot the sketch\n```\n\nMore words.",
        code_sketch="def f(points):\n    ## not a heading\n    return points[:, :2].mean(axis=0) + {{OFFSET}}",
        placeholders={"OFFSET": {"default": 0.01, "doc": "m"}},
        trace_signals={
            "statuses": ["GRASP_EMPTY"],
            "primitives": ["close_gripper"],
            "gripper_width_m": [0.0, 0.005],
            "detections": [1, 3],
            "error_contains": ["missed"],
        },
        notes="## Extra\n\nKept verbatim.",
        validated_context="Lift, seeds 101-125.",
        change_note="tighter band",
        pass_rate_before=0.5,
        pass_rate_after=1.0,
        seeds_flipped=[105],
        usage_count=3,
        win_count=2,
        **kw,
    )


def test_it_round_trips_every_field_through_markdown():
    skill = full_skill()
    text = export_skill_markdown(skill)
    draft = parse_skill_markdown(text).cleaned()
    assert draft == SkillDraft.from_skill(skill)
    front = yaml.safe_load(text.split("---")[1])
    assert front["kind"] == "grasp constraint" and front["evidence"]["seeds_flipped"] == [105]
    for heading in (
        "# Cube localisation",
        "## Symptom",
        "## Technique",
        "## When to apply",
        "## When NOT to apply",
        "## Validated context",
    ):
        assert f"\n{heading}\n" in text
    assert text.index("## When NOT to apply") < text.index("## Extra") < text.index("## Validated context")


def test_an_exported_file_imports_as_a_proposed_new_version_of_the_approved_skill():
    approved = full_skill()
    imported = import_skill_markdown(export_skill_markdown(approved), proposed_by="colleague")
    assert imported.status == Skill.Status.PROPOSED and imported.provenance == Skill.Provenance.IMPORT
    assert imported.version == 3 and imported.parent == approved
    assert imported.pass_rate_after is None and imported.usage_count == 0  # evidence is never imported
    assert "waiting for re-execution evidence" in imported.status_reason


def test_it_imports_a_file_in_the_published_layout_keeping_every_section_as_guidance():
    skill = import_skill_markdown(PUBLISHED_STYLE, default_kind="recovery")
    assert skill.kind == Skill.Kind.RECOVERY and skill.title == "Wrist turn for arm-body blocking"
    assert skill.symptom.startswith("The descent stops")
    assert skill.repair_strategy == "Turn joint 7 by a quarter turn after solving IK."
    assert skill.code_sketch.startswith("def turned(joints):") and "out[6] += math.pi / 2" in skill.code_sketch
    assert skill.when_to_apply == "- The approach is right but blocked."
    assert skill.when_not_to_apply == "- The tip itself collides."
    assert skill.guidance == PUBLISHED_STYLE.split("---\n", 2)[2].strip()  # the body, verbatim
    assert "## Cross-reference rule\n\nCheck the other blocking skills first." in skill.guidance
    assert skill.notes == ""
    assert skill.validated_context == "Panda, shelves at the side."
    assert skill.status == Skill.Status.PROPOSED
    without_kind = import_skill_markdown(PUBLISHED_STYLE.replace("wrist-turn-when-blocked", "no-kind-said"))
    assert without_kind.kind == "" and without_kind.status == Skill.Status.PROPOSED


@pytest.mark.parametrize(
    "text, message",
    [
        ("# no front matter", "no front matter and no file name"),
        ("", "the file is empty"),
        (" \n\n", "the file is empty"),
        ("---\nname: x\n", "not closed"),
        ("---\nname: [unclosed\n  - more\n---\n", "not valid YAML .* nor plain 'key: value' lines"),
        ("---\n- a list\n---\n", "must be a YAML mapping"),
        ("---\ndescription: d\nkind: recovery\n---\n", "has no name"),
        ("---\nname: n\ndescription: d\nlayout: sections\n---\n", "has no kind"),
        ("---\nname: n\ndescription: d\nlayout: poem\n---\n", "layout in the front matter must be one of"),
        ("---\nname: n\ndescription: d\n---\n", "must say what to do"),
        ("---\nname: n\ndescription: d\n---\nok\x00", "NUL characters"),
        (
            "---\nname: n\ndescription: d\nkind: recovery\nplaceholders: [1]\n---\n",
            "placeholders in the front matter must be a mapping",
        ),
    ],
)
def test_malformed_files_are_refused_with_the_reason_and_create_nothing(text, message):
    with pytest.raises((SkillFormatError, SkillInputError), match=message):
        import_skill_markdown(text)
    assert not Skill.objects.exists()


def test_a_file_whose_fields_break_the_rules_names_the_field():
    text = PUBLISHED_STYLE.replace("description: Turn", "kind: flying\ndescription: Turn")
    with pytest.raises(Exception, match="kind: unknown kind 'flying'"):
        import_skill_markdown(text)
    assert not Skill.objects.exists()


def test_an_imported_sketch_that_reads_the_simulator_is_refused_by_the_policy_check():
    text = PUBLISHED_STYLE.replace("out = np.array(joints)", "out = np.array(env.sim.data.qpos[:7])")
    skill = import_skill_markdown(text, default_kind="recovery")
    assert skill.status == Skill.Status.REJECTED and skill.rejection_stage == Skill.Stage.POLICY
    assert "'env' refers to the simulator" in skill.status_reason
    assert {i["code"] for i in skill.policy_issues} == {"SIMULATOR_STATE"}


def test_the_library_export_holds_the_newest_approved_version_of_each_skill():
    full_skill()
    SkillFactory(name="other", status=Skill.Status.PROPOSED)
    SkillFactory(name="old", version=1, status=Skill.Status.RETIRED)
    archive = zipfile.ZipFile(io.BytesIO(export_library_zip()))
    assert archive.namelist() == ["skills/cube-localisation.md"]
    assert parse_skill_markdown(archive.read("skills/cube-localisation.md").decode()).name == "cube-localisation"


def test_uploads_import_each_good_file_and_report_each_bad_one():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("skills/a.md", PUBLISHED_STYLE.replace("wrist-turn-when-blocked", "from-zip"))
        archive.writestr("skills/readme.txt", "ignored")
        archive.writestr("skills/broken.md", "---\nname: broken\n")
    outcomes = import_skill_files(
        [
            ("one.md", PUBLISHED_STYLE.encode()),
            ("bundle.zip", buffer.getvalue()),
            ("latin.md", b"\xff\xfe"),
            ("bad.zip", b"not a zip"),
        ],
        default_kind="recovery",
    )
    result = {o.filename: (o.skill.name if o.skill else o.error or f"skipped: {o.skipped}") for o in outcomes}
    assert result == {
        "one.md": "wrist-turn-when-blocked",
        "bundle.zip:skills/a.md": "from-zip",
        "bundle.zip:skills/readme.txt": "skipped: not a markdown file",
        "bundle.zip:skills/broken.md": "the front matter is not closed by a line '---'",
        "latin.md": "not UTF-8 text (a binary file?)",
        "bad.zip": "not a zip archive",
    }
    assert set(Skill.objects.values_list("name", flat=True)) == {"wrist-turn-when-blocked", "from-zip"}


def test_the_export_and_import_commands_round_trip_a_library(tmp_path):
    full_skill()
    SkillFactory(name="second-skill")
    call_command("export_skills", "--out", str(tmp_path), stdout=io.StringIO())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube-localisation.md", "second-skill.md"]
    Skill.objects.all().delete()
    out = io.StringIO()
    call_command("import_skills", str(tmp_path), stdout=out)
    assert Skill.objects.filter(status=Skill.Status.PROPOSED, provenance=Skill.Provenance.IMPORT).count() == 2
    assert "cube-localisation v1 proposed" in out.getvalue()
    (tmp_path / "broken.md").write_text("---\nname: broken\n")
    with pytest.raises(CommandError, match="1 of 3 file"):
        call_command("import_skills", str(tmp_path), stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="no approved skill named nope"):
        call_command("export_skills", "--out", str(tmp_path), "--name", "nope")
