"""Skills in and out of the library as markdown files: ``import_skill_markdown`` / ``import_skill_files``
(one file, or uploads of files and zip archives, as proposed skills that go through admission),
``export_library_zip`` (the approved library as a zip; one skill: skills.markdown.export_skill_markdown)
and the seed library, ``install_seed_skills`` (``skills/seed/*.md`` as approved skills).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.db.models import Max

from .content import SkillInputError
from .lifecycle import propose_skill
from .markdown import SkillFormatError, export_skill_markdown, parse_skill_markdown
from .models import Skill
from .policy import check_skill_code, describe_issues

SEED_DIR = Path(__file__).resolve().parent / "seed"


# -- markdown files ---------------------------------------------------------------------------------------
def import_skill_markdown(text: str, *, proposed_by: str = "", default_kind: str = "") -> Skill:
    """Import one markdown skill file as a PROPOSED skill (provenance "import"); it goes through
    admission like any proposal (policy check now; re-execution once it has programs and seeds).
    Raises SkillFormatError (not a skill file) or SkillInputError (a field breaks a rule)."""
    draft = parse_skill_markdown(text, default_kind=default_kind)
    return propose_skill(
        draft,
        provenance=Skill.Provenance.IMPORT,
        proposed_by=proposed_by,
        source_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


@dataclass
class ImportOutcome:
    """One uploaded file: the skill it became, or why it did not."""

    filename: str
    skill: Skill | None = None
    error: str = ""


def import_skill_files(
    files: list[tuple[str, bytes]],
    *,
    proposed_by: str = "",
    default_kind: str = "",
    max_file_bytes: int = 200_000,
    max_files: int = 200,
) -> list[ImportOutcome]:
    """Import uploaded ``(filename, content)`` pairs: ``.md`` files, or ``.zip`` archives whose ``.md``
    members are imported. Each file succeeds or fails on its own (a bad file loses no good one)."""
    outcomes: list[ImportOutcome] = []
    documents: list[tuple[str, bytes]] = []
    for filename, data in files:
        if filename.lower().endswith(".zip"):
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    members = [
                        m
                        for m in archive.infolist()
                        if m.filename.lower().endswith(".md")
                        and not m.is_dir()
                        and not m.filename.startswith("__MACOSX/")
                    ]
                    for member in members[:max_files]:
                        # Sizes come from the archive directory, checked before inflating anything.
                        if member.file_size > max_file_bytes:
                            outcomes.append(ImportOutcome(f"{filename}:{member.filename}", error="file too large"))
                        else:
                            documents.append((f"{filename}:{member.filename}", archive.read(member)))
                    if len(members) > max_files:
                        outcomes.append(ImportOutcome(filename, error=f"only the first {max_files} files were read"))
            except zipfile.BadZipFile:
                outcomes.append(ImportOutcome(filename, error="not a zip archive"))
        else:
            documents.append((filename, data))
    for name, data in documents:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            outcomes.append(ImportOutcome(name, error="not UTF-8 text"))
            continue
        try:
            skill = import_skill_markdown(
                text, proposed_by=proposed_by or f"import of {name}", default_kind=default_kind
            )
        except (SkillFormatError, SkillInputError) as exc:
            outcomes.append(ImportOutcome(name, error=str(exc)))
        else:
            outcomes.append(ImportOutcome(name, skill=skill))
    return outcomes


def export_library_zip(statuses=(Skill.Status.APPROVED,)) -> bytes:
    """A zip of ``<name>.md`` files, one per skill with a status in ``statuses`` (the newest version
    of each name when several match)."""
    buffer = io.BytesIO()
    seen = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        matching = Skill.objects.filter(status__in=list(statuses)).select_related("parent")
        for skill in matching.order_by("name", "-version"):
            if skill.name in seen:
                continue
            seen.add(skill.name)
            archive.writestr(f"skills/{skill.name}.md", export_skill_markdown(skill))
    return buffer.getvalue()


# -- seed library ---------------------------------------------------------------------------------------
@dataclass
class SeedReport:
    """What ``install_seed_skills`` did, by skill name."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "name: why"


class SeedError(ValueError):
    """A seed file that does not parse or does not pass the policy check: a bug in the shipped library."""


def install_seed_skills(directory: Path = SEED_DIR) -> SeedReport:
    """Load the seed library's markdown files as APPROVED skills (provenance "seed"). Idempotent: an
    unchanged file changes nothing; a changed file updates its seed skill in place while that skill is
    still approved; a seed skill a person retired or rejected is left alone, as is a name already
    taken by another approved skill. Raises SeedError naming the file when a seed file is broken."""
    report = SeedReport()
    for path in sorted(Path(directory).glob("*.md")):
        text = path.read_text(encoding="utf-8")
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        try:
            draft = parse_skill_markdown(text).cleaned()
        except (SkillFormatError, SkillInputError) as exc:
            raise SeedError(f"{path.name}: {exc}") from None
        issues = check_skill_code(draft.code_sketch, draft.placeholders)
        if issues:
            raise SeedError(f"{path.name} fails the API-policy check:\n{describe_issues(issues)}")
        with transaction.atomic():
            seeds = Skill.objects.select_for_update().filter(name=draft.name, provenance=Skill.Provenance.SEED)
            seed = seeds.order_by("-version").first()
            if seed is not None and seed.source_hash == digest:
                report.unchanged.append(draft.name)
                continue
            if seed is not None and seed.status != Skill.Status.APPROVED:
                report.skipped.append(f"{draft.name}: the seed skill is {seed.status}")
                continue
            if seed is not None:
                for key, value in draft.as_fields().items():
                    setattr(seed, key, value)
                seed.source_hash = digest
                seed.save()
                report.updated.append(draft.name)
                continue
            other = Skill.objects.filter(name=draft.name, status=Skill.Status.APPROVED).first()
            if other is not None:
                report.skipped.append(f"{draft.name}: {other} is approved already")
                continue
            latest = Skill.objects.filter(name=draft.name).aggregate(v=Max("version"))["v"] or 0
            Skill.objects.create(
                **draft.as_fields(),
                version=latest + 1,
                provenance=Skill.Provenance.SEED,
                proposed_by="seed library",
                source_hash=digest,
                status=Skill.Status.APPROVED,
                status_reason="shipped with ASPIRE web's seed library (distilled from the reference programs)",
            )
            report.created.append(draft.name)
    return report
