"""Skill exchange with real published files: the compatibility corpus (compat/skills/, our own text in the
shapes of the published ASPIRE skill folders) imports through the command and the upload page alike,
keeps every file's body verbatim, reads only what the text states, round-trips through export, renders
sanitised, and bad files fail one by one with the reason."""

import io
import re
import zipfile
from pathlib import Path

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from skills.content import SkillDraft
from skills.exchange import import_skill_files, import_skill_markdown
from skills.markdown import export_skill_markdown, parse_skill_markdown
from skills.models import Skill

pytestmark = pytest.mark.django_db

CORPUS = Path(__file__).resolve().parents[2] / "compat" / "skills"
#: skill name -> its file in the corpus (every .md file but the two README indexes).
FILES = {
    "arm-motion-planner": "real/arm-motion-planner/SKILL.md",
    "arm-retreat-recovery": "real/arm-retreat-recovery/SKILL.md",
    "arm-workspace-geometry": "real/arm-workspace-geometry/SKILL.md",
    "arm-workspace-geometry-finger-geometry": "real/arm-workspace-geometry/references/finger-geometry.md",
    "pickplace-skills-grasp": "sim/pickplace/skills/grasp.md",
    "pickplace-skills-transport": "sim/pickplace/skills/transport.md",
    "arm-body-blocking": "sim/pickplace/skills/arm-body-blocking.md",
    "call-budget": "sim/pickplace/skills/call-budget.md",
    "tray-edge-localisation": "tray-edge-localisation.md",
}
SKIPPED = {
    "README.md": "skipped: index of the folder",
    "sim/pickplace/skills/README.md": "skipped: index of the folder",
    "real/arm-workspace-geometry/references/handover_demo.py": "skipped: not a markdown file",
}
CONTENT = [f.name for f in SkillDraft.__dataclass_fields__.values()]


def import_corpus(*paths) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_skills", *(paths or [str(CORPUS)]), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def body_of(relative: str) -> str:
    """A corpus file's text after its front matter, without leading blank lines and trailing space."""
    text = (CORPUS / relative).read_text(encoding="utf-8")
    if text.startswith("---\n"):
        text = text.split("\n---\n", 1)[1]
    return text.lstrip("\n").rstrip()


def snapshot() -> dict[str, dict]:
    return {s.name: {k: getattr(s, k) for k in CONTENT + ["status", "version"]} for s in Skill.objects.all()}


# -- the corpus is what it claims to be -------------------------------------------------------------------
def test_the_corpus_has_the_published_quirks_it_is_meant_to_exercise():
    front = (CORPUS / FILES["pickplace-skills-transport"]).read_text().split("---\n")[1]
    with pytest.raises(yaml.YAMLError, match="mapping values are not allowed"):
        yaml.safe_load(front)  # an unquoted ": " in the description, as in two published files
    for name in ("arm-motion-planner", "arm-retreat-recovery", "arm-workspace-geometry"):
        lines = (CORPUS / FILES[name]).read_text().splitlines()
        assert lines[1] == f"name: {name}" and re.match(r'^description: "Use (for|when) ', lines[2])
        assert lines[3] == "---" and not any(line.startswith("## ") for line in lines)  # label lines, no sections
    assert "```bash" in (CORPUS / FILES["arm-motion-planner"]).read_text()
    for name in ("call-budget", "arm-workspace-geometry-finger-geometry"):
        assert not (CORPUS / FILES[name]).read_text().startswith("---")
    assert (CORPUS / FILES["pickplace-skills-grasp"]).read_text().count("```python\nimport numpy as np") == 1
    assert "| Pattern | Task | Trigger | Procedure | Notes |" in (CORPUS / FILES["pickplace-skills-grasp"]).read_text()
    assert {p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file()} == set(FILES.values()) | set(
        SKIPPED
    )


# -- importing the corpus ----------------------------------------------------------------------------------
def test_the_command_imports_every_skill_file_of_the_corpus_and_reports_the_rest():
    out, err = import_corpus()
    assert err == ""
    assert set(Skill.objects.values_list("name", flat=True)) == set(FILES)
    for skill in Skill.objects.all():
        assert skill.provenance == Skill.Provenance.IMPORT and skill.status == Skill.Status.PROPOSED, skill
        assert skill.policy_issues == [] and "waiting for re-execution evidence" in skill.status_reason
        assert f"{CORPUS / FILES[skill.name]}: {skill} proposed" in out
    for relative, line in SKIPPED.items():
        assert f"{CORPUS / relative}: {line}" in out
    assert out.rstrip().endswith("imported 9, unchanged 0, skipped 3, not imported 0")
    assert "(kind left blank for the reviewer)" in out


def test_each_file_keeps_its_body_verbatim_as_guidance():
    import_corpus()
    for name, relative in FILES.items():
        skill = Skill.objects.get(name=name)
        if name == "tray-edge-localisation":  # our own layout: sections into fields, no guidance
            assert skill.guidance == "" and skill.title == "Tray edge localisation"
            continue
        assert skill.guidance == body_of(relative), name
    grasp = Skill.objects.get(name="pickplace-skills-grasp").guidance
    for kept in ("## Validated Grasp Strategies", "### Grasp Planner Z Override", "| width check | all |", "> The"):
        assert kept in grasp


@pytest.mark.parametrize(
    "name, kind, stated",
    [
        # Real-robot style: the description's "Use for/when" is when to apply; nothing else is stated.
        ("arm-motion-planner", "motion_primitive", {"when_to_apply": "description"}),
        ("arm-retreat-recovery", "recovery", {"when_to_apply": "description"}),
        ("arm-workspace-geometry", "", {"when_to_apply": "description"}),
        ("arm-workspace-geometry-finger-geometry", "", {}),
        # Simulation topic files: a python template is the sketch; other blocks are not.
        ("pickplace-skills-grasp", "grasp_constraint", {"code_sketch": "import numpy as np\n\nTOP_DOWN"}),
        ("pickplace-skills-transport", "motion_primitive", {}),
        ("call-budget", "", {}),
        (
            "arm-body-blocking",
            "",
            {
                "symptom": "The descent solves IK",
                "repair_strategy": "Solve IK for the target",
                "code_sketch": "import math\n\n\ndef turned_joints",
                "when_to_apply": "- The approach direction is right",
                "when_not_to_apply": "- The fingertips themselves collide",
                "validated_context": "Panda arm, descents beside a shelf",
            },
        ),
        (
            "tray-edge-localisation",
            "localisation",
            {
                "symptom": "The grasp lands inside the tray",
                "repair_strategy": "Keep only the highest points",
                "code_sketch": "def rim_centre(points):",
                "when_to_apply": "- Trays",
                "when_not_to_apply": "- Flat plates",
                "validated_context": "Written for the compatibility corpus",
            },
        ),
    ],
)
def test_kind_and_applicability_are_read_only_where_the_text_states_them(name, kind, stated):
    import_corpus()
    skill = Skill.objects.get(name=name)
    assert skill.kind == kind
    for key in ("symptom", "when_to_apply", "when_not_to_apply", "repair_strategy", "code_sketch", "validated_context"):
        value = getattr(skill, key)
        expected = stated.get(key)
        if expected is None:
            assert value == "", (key, value)
        elif expected == "description":
            assert value == skill.description and value.startswith("Use ")
        else:
            assert value.startswith(expected), (key, value)
    assert "```" not in skill.repair_strategy  # the sketch's block is not repeated in the words


def test_names_descriptions_and_titles_of_published_shapes():
    import_corpus()
    transport = Skill.objects.get(name="pickplace-skills-transport")  # name "pickplace/skills/transport"
    assert transport.description.startswith("Movement patterns for carrying a held object: waypoints,")
    assert transport.description.endswith("Key rule: lift first, then move sideways, then descend.")
    budget = Skill.objects.get(name="call-budget")  # no front matter: name from the file, words from the text
    assert budget.title == "Call Budget for Candidate Programs"
    assert budget.description.startswith("Call Budget for Candidate Programs: Every motion call blocks")
    finger = Skill.objects.get(name="arm-workspace-geometry-finger-geometry")  # <skill>/references/<file>
    assert finger.description.startswith("Finger Geometry Notes: These measurements hold")
    placeholders = Skill.objects.get(name="tray-edge-localisation").placeholders
    assert placeholders == {"RIM_BAND": {"default": 0.01, "doc": "height band of the rim above the tray floor, m"}}


def test_only_python_templates_meet_the_python_policy_check(tmp_path):
    """Bash blocks, prose and python outside a template never reach the check; a template that imports
    what the sandbox refuses is rejected with the reason, as any sketch."""
    (tmp_path / "notes.md").write_text(
        "---\nname: shell-notes\ndescription: Use for reading logs.\n---\n\n# Shell notes\n\n"
        "Run it like this:\n\n```bash\nimport os; cat /etc/passwd | python -c 'open(1)'\n```\n\n"
        "## Debug helper\n\n```python\nqpos = env.sim.data.qpos\n```\n"
    )
    (tmp_path / "template.md").write_text(
        "---\nname: os-template\ndescription: A template.\n---\n\n## Grasp Template\n\n"
        "```python\nimport numpy as np\nimport os\n```\n"
    )
    (tmp_path / "scipy.md").write_text(
        "---\nname: scipy-template\ndescription: A template.\n---\n\n## Grasp Template\n\n"
        "```python\nimport numpy as np\nfrom scipy.spatial.transform import Rotation\n"
        "q = Rotation.from_euler('z', 0.3).as_quat()\n```\n"
    )
    out, _ = import_corpus(str(tmp_path))
    notes = Skill.objects.get(name="shell-notes")
    assert notes.status == Skill.Status.PROPOSED and notes.code_sketch == "" and notes.policy_issues == []
    template = Skill.objects.get(name="os-template")
    assert template.status == Skill.Status.REJECTED and template.rejection_stage == Skill.Stage.POLICY
    assert "import of os is not allowed" in template.status_reason, template.status_reason
    assert "os-template v1 rejected: refused by the API-policy check: code sketch, line 2: import of os" in out
    # What the sandbox serves published programs (scipy's Rotation) passes.
    scipy = Skill.objects.get(name="scipy-template")
    assert scipy.status == Skill.Status.PROPOSED and scipy.policy_issues == [], scipy.status_reason


def test_importing_the_same_files_again_creates_nothing_and_says_so(tmp_path):
    import_corpus()
    before = snapshot()
    out, _ = import_corpus()
    assert snapshot() == before and Skill.objects.count() == len(FILES)
    assert f"{CORPUS / FILES['call-budget']}: unchanged: imported before as call-budget v1 (proposed)" in out
    assert out.rstrip().endswith("imported 0, unchanged 9, skipped 3, not imported 0")
    changed = tmp_path / "call-budget.md"
    changed.write_text((CORPUS / FILES["call-budget"]).read_text() + "\nOne more rule.\n")
    import_corpus(str(changed))
    assert Skill.objects.get(name="call-budget", version=2).guidance.endswith("One more rule.")


def test_tolerant_front_matter_and_names_with_slashes_or_spaces():
    skill = import_skill_markdown(
        "---\nname: Suite/Fix Loop/skills/Place Softly\ndescription: Release low: 3 cm above the surface.\n"
        "kind_hint: ignored\n---\n# Place softly\n\nOpen the gripper close to the surface.\n"
    )
    assert skill.name == "suite-fix-loop-skills-place-softly"
    assert skill.description == "Release low: 3 cm above the surface."
    quoted = import_skill_markdown('---\nname: yes\ndescription: "Use when \\"stuck\\": back off."\n---\nBack off.\n')
    assert quoted.name == "yes" and quoted.description == 'Use when "stuck": back off.'
    assert quoted.when_to_apply == quoted.description


def test_a_readme_alone_is_documentation_unless_it_has_front_matter(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "README.md").write_text("# Folder notes\n\nUse the parent folder.\n")
    (tmp_path / "solo").mkdir()
    (tmp_path / "solo" / "README.md").write_text("---\nname: solo-skill\ndescription: d\n---\nDo this.\n")
    out, _ = import_corpus(str(tmp_path))
    assert "docs/README.md: skipped: README.md without front matter" in out
    assert list(Skill.objects.values_list("name", flat=True)) == ["solo-skill"]


# -- export -> import ----------------------------------------------------------------------------------------
def test_export_writes_name_and_description_first_on_one_line_and_the_guidance_verbatim():
    import_corpus()
    for skill in Skill.objects.all():
        text = export_skill_markdown(skill)
        lines = text.split("\n")
        assert lines[0] == "---" and lines[1] == f"name: {skill.name}"
        assert lines[2].startswith("description: ") and yaml.safe_load(lines[2]) == {"description": skill.description}
        if skill.guidance:
            assert text.split("\n---\n", 1)[1].strip() == body_of(FILES[skill.name])
    long = Skill.objects.get(name="arm-retreat-recovery")
    assert len(long.description) > 150 and f'description: "{long.description}"' in export_skill_markdown(long)
    long.description = 'Two lines,\nwith "quotes": and a colon.'
    lines = export_skill_markdown(long).split("\n")
    assert lines[2] == 'description: "Two lines,\\nwith \\"quotes\\": and a colon."' and lines[3] == "layout: guidance"
    assert parse_skill_markdown("\n".join(lines)).description == long.description


def test_export_then_import_round_trips_every_imported_skill_without_loss(tmp_path):
    import_corpus()
    body = Skill.objects.get(name="pickplace-skills-transport")
    body.kind, body.when_not_to_apply = Skill.Kind.MOTION_PRIMITIVE, "Fragile objects: see the placement table."
    body.save()  # a reviewer's additions travel in the front matter
    blank = Skill.objects.get(name="arm-motion-planner")
    blank.kind = ""
    blank.save()  # cleared on purpose: the exported file says so rather than let inference refill it
    for skill in Skill.objects.all():
        draft = parse_skill_markdown(export_skill_markdown(skill)).cleaned(allow_blank_kind=True)
        assert draft == SkillDraft.from_skill(skill), skill.name
    before = {k: {f: v for f, v in row.items() if f != "version"} for k, row in snapshot().items()}
    call_command("export_skills", "--out", str(tmp_path), "--status", "proposed", stdout=io.StringIO())
    Skill.objects.all().delete()
    import_corpus(str(tmp_path))
    after = {k: {f: v for f, v in row.items() if f != "version"} for k, row in snapshot().items()}
    assert after == before


# -- pages ---------------------------------------------------------------------------------------------------
HOSTILE = """---
name: hostile
description: Use when testing the page.
---

# Hostile file

<script>alert("owned")</script>

[click me](javascript:alert(1)) and [also](JaVaScRiPt:alert(2)) and <a href="javascript:alert(3)">raw</a>

<img src=x onerror=alert(4)> ![tracker](https://evil.example/pixel.png)

| Pattern | Trigger |
|---|---|
| **lift first** | `GRASP_EMPTY` |

[a real link](https://example.org/doc)
"""


def test_the_skill_page_renders_imported_markdown_sanitised(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reader", password="pw-not-used"))
    skill = import_skill_markdown(HOSTILE)
    page = client.get(skill.get_absolute_url()).content.decode()
    guidance = page.split('id="skill-guidance">', 1)[1].split("</div>", 1)[0]
    assert "<script" not in guidance and '&lt;script&gt;alert("owned")&lt;/script&gt;' in guidance
    links = re.findall(r'<a href="([^"]*)"', guidance)  # real tags; the raw <a> above is shown as text
    assert links == ["https://evil.example/pixel.png", "https://example.org/doc"]  # no javascript: link survives
    assert "<img" not in guidance and "&lt;img src=x onerror=alert(4)&gt;" in guidance  # shown, never run
    assert "!<a" in guidance  # an image is a link to click, not a request the page makes
    assert '<a href="https://example.org/doc" rel="nofollow noopener noreferrer">a real link</a>' in guidance
    assert '<table class="grid">' in guidance and "<strong>lift first</strong>" in guidance
    assert "<h3>Hostile file</h3>" in guidance  # headings sit under the page's own
    assert "not set: the imported file does not say it" in page


def test_a_corpus_skill_page_shows_its_sections_once(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reader", password="pw-not-used"))
    import_corpus()
    page = client.get(Skill.objects.get(name="pickplace-skills-grasp").get_absolute_url()).content.decode()
    assert "<h4>Validated Grasp Strategies</h4>" in page and "<h5>Contact Check After Closing</h5>" in page
    assert page.count("Grasp a box at the middle of its height") == 1
    assert "Code sketch, taken from the guidance below" in page
    blocking = client.get(Skill.objects.get(name="arm-body-blocking").get_absolute_url()).content.decode()
    assert blocking.count("The fingertips themselves collide") == 1  # in the guidance, not again as a field


def test_a_zip_of_the_corpus_on_the_upload_page_gives_the_same_result_as_the_command(admin_client):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(CORPUS.rglob("*")):
            if path.is_file():
                archive.write(path, "skills/" + path.relative_to(CORPUS).as_posix())
    upload = SimpleUploadedFile("corpus.zip", buffer.getvalue(), content_type="application/zip")
    response = admin_client.post(reverse("skills:import"), {"files": [upload]})
    page = response.content.decode()
    assert response.status_code == 200 and "not imported" not in page
    assert page.count("skipped: index of the folder") == 2 and "skipped: not a markdown file" in page
    assert "corpus.zip:skills/real/arm-workspace-geometry/references/finger-geometry.md" in page
    from_zip = snapshot()
    Skill.objects.all().delete()
    import_corpus()
    assert snapshot() == from_zip and set(from_zip) == set(FILES)


# -- malformed input ---------------------------------------------------------------------------------------
MALFORMED = {
    "binary.md": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xd8", "not UTF-8 text"),
    "nul.md": (b"# Looks like text\x00\x00\x00", "NUL characters: a binary file"),
    "huge.md": (b"---\nname: huge\ndescription: d\n---\n" + b"x" * 210_000, "file too large (210034 bytes; at most"),
    "unclosed.md": (b"---\nname: unclosed\ndescription: never closed\n\n# Body\n", "front matter is not closed"),
    "empty.md": (b"", "the file is empty"),
}


def test_malformed_files_fail_one_by_one_with_the_reason_and_lose_no_other_file(tmp_path):
    (tmp_path / "good.md").write_text((CORPUS / FILES["arm-body-blocking"]).read_text())
    for name, (data, _) in MALFORMED.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="5 of 6 file"):
        call_command("import_skills", str(tmp_path), stdout=out, stderr=err)
    for name, (_, reason) in MALFORMED.items():
        assert f"{tmp_path / name}: not imported: " in err.getvalue() and reason in err.getvalue(), name
    assert "photo.png: skipped: not a markdown file" in out.getvalue()
    assert list(Skill.objects.values_list("name", flat=True)) == ["arm-body-blocking"]

    Skill.objects.all().delete()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("bundle/good.md", (CORPUS / FILES["call-budget"]).read_bytes())
        for name, (data, _) in MALFORMED.items():
            archive.writestr(f"bundle/{name}", data)
    outcomes = {o.filename: o for o in import_skill_files([("up.zip", buffer.getvalue())])}
    for name, (_, reason) in MALFORMED.items():
        assert reason in outcomes[f"up.zip:bundle/{name}"].error, name
    assert outcomes["up.zip:bundle/good.md"].skill.name == "good"  # no front matter: named after the file
    assert Skill.objects.count() == 1
