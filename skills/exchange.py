"""Skills in and out of the library as markdown files: ``import_skill_paths`` (files and folders, walked
recursively), ``import_skill_files`` (uploads of files and zip archives, folders inside them included)
and ``import_skill_markdown`` (one text), all as proposed skills that go through admission;
``export_library_zip`` (the approved library as a zip; one skill: skills.markdown.export_skill_markdown)
and the seed library, ``install_seed_skills`` (``skills/seed/*.md`` as approved skills).

What an import reads (the same rules for folders and zip archives):

- every ``.md`` file is a skill file, in either layout of skills.markdown (published files included);
- ``README.md`` is a folder's index or documentation, not a skill: skipped when its folder holds other
  ``.md`` files ("index of the folder") or when it has no front matter; a README.md with front matter
  alone in its folder imports like any file;
- other files (a reference ``.py``, images) are reported as skipped; version-control and OS litter
  (IGNORED_NAMES) is passed over silently;
- each file succeeds or fails on its own, with the reason (not UTF-8, binary, too large, empty, front
  matter not closed, ...): a bad file loses no good one;
- a file imported before (same skill name, same sha256 as ``source_hash``) is reported unchanged and
  creates nothing; a changed file becomes the skill's next proposed version.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from django.db import transaction
from django.db.models import Max

from .content import SkillInputError
from .lifecycle import propose_skill
from .markdown import MAX_FILE, SkillFormatError, export_skill_markdown, parse_skill_markdown
from .models import Skill
from .policy import check_skill_code, describe_issues

SEED_DIR = Path(__file__).resolve().parent / "seed"
IGNORED_NAMES = frozenset({".git", ".hg", ".svn", "__pycache__", "__MACOSX", ".DS_Store", "Thumbs.db"})
INDEX_NAME = "readme.md"
SKIP_INDEX = "index of the folder (README.md beside other .md files)"
SKIP_README = "README.md without front matter: documentation of the folder, not a skill"
SKIP_NOT_MARKDOWN = "not a markdown file"


# -- markdown files ---------------------------------------------------------------------------------------
def import_skill_markdown(text: str, *, proposed_by: str = "", default_kind: str = "", path: str = "") -> Skill:
    """Import one markdown skill file as a PROPOSED skill (provenance "import"); it goes through
    admission like any proposal (policy check now; re-execution once it has programs and seeds).
    ``path`` names a file without front matter (skills.guidance.name_from_path). A file imported before
    (same name and content) returns the skill it became then. Raises SkillFormatError (not a skill
    file) or SkillInputError (a field breaks a rule)."""
    return _import_text(text, path=path, proposed_by=proposed_by, default_kind=default_kind)[0]


def _import_text(text: str, *, path: str, proposed_by: str, default_kind: str) -> tuple[Skill, bool]:
    """(the skill, True when the same file had been imported before and nothing was created)."""
    draft = parse_skill_markdown(text, default_kind=default_kind, path=path)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    name = draft.cleaned(allow_blank_kind=True).name
    earlier = Skill.objects.filter(name=name, source_hash=digest).order_by("-version").first()
    if earlier is not None:
        return earlier, True
    skill = propose_skill(draft, provenance=Skill.Provenance.IMPORT, proposed_by=proposed_by, source_hash=digest)
    return skill, False


@dataclass
class ImportOutcome:
    """One file: the skill it became (``unchanged`` when it had been imported before), or why it was
    skipped (not a skill file) or not imported (an error)."""

    filename: str
    skill: Skill | None = None
    error: str = ""
    skipped: str = ""
    unchanged: bool = False

    def describe(self) -> str:
        """One line for a person: what happened to the file."""
        if self.error:
            return f"{self.filename}: not imported: {self.error}"
        if self.skipped:
            return f"{self.filename}: skipped: {self.skipped}"
        skill = self.skill
        if self.unchanged:
            return f"{self.filename}: unchanged: imported before as {skill} ({skill.status})"
        line = f"{self.filename}: {skill} {skill.status}"
        if skill.status != Skill.Status.PROPOSED:
            reason = skill.status_reason.splitlines() or [""]
            # "refused by the API-policy check:" is followed by the issues, one a line: show the first.
            line += f": {reason[0]} {reason[1]}" if reason[0].endswith(":") and len(reason) > 1 else f": {reason[0]}"
        return line + ("" if skill.kind else " (kind left blank for the reviewer)")


@dataclass
class _Document:
    """A file to import: ``label`` is shown, ``path`` (folders and file name) names a file without front
    matter and places it in its folder."""

    label: str
    path: str
    data: bytes | None = None
    error: str = ""
    skipped: str = ""
    readme_alone: bool = False


def import_skill_paths(
    paths: list[Path], *, proposed_by: str = "", default_kind: str = "", max_file_bytes: int = MAX_FILE
) -> list[ImportOutcome]:
    """Import ``.md`` files and folders of them (walked recursively); see the module docstring.
    Raises FileNotFoundError naming a path that does not exist (before importing anything)."""
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
    documents: list[_Document] = []
    for path in paths:
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*") if p.is_file() and not IGNORED_NAMES.intersection(p.relative_to(path).parts)
            )
            documents.extend(_plan([(str(p), p.resolve().as_posix(), p.stat().st_size) for p in files], max_file_bytes))
        else:
            documents.extend(_plan([(str(path), path.resolve().as_posix(), path.stat().st_size)], max_file_bytes))
    for document in documents:
        if document.data is None and not (document.error or document.skipped):
            try:
                document.data = Path(document.path).read_bytes()
            except OSError as exc:
                document.error = f"cannot be read: {exc.strerror or exc}"
    return _import_documents(documents, proposed_by=proposed_by, default_kind=default_kind)


def import_skill_files(
    files: list[tuple[str, bytes]],
    *,
    proposed_by: str = "",
    default_kind: str = "",
    max_file_bytes: int = MAX_FILE,
    max_files: int = 200,
) -> list[ImportOutcome]:
    """Import uploaded ``(filename, content)`` pairs: ``.md`` files, or ``.zip`` archives whose members
    are read by the same rules as a folder (see the module docstring). Each file succeeds or fails on
    its own (a bad file loses no good one)."""
    outcomes: list[ImportOutcome] = []
    documents: list[_Document] = []
    # The uploaded .md files are one folder (a README.md among them is its index).
    plain = [(name, data) for name, data in files if not name.lower().endswith(".zip")]
    for (_, data), document in zip(plain, _plan([(n, n, len(d)) for n, d in plain], max_file_bytes)):
        if not (document.error or document.skipped):
            document.data = data
        documents.append(document)
    for filename, data in files:
        if not filename.lower().endswith(".zip"):
            continue
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = [
                    m
                    for m in archive.infolist()
                    if not m.is_dir() and not IGNORED_NAMES.intersection(PurePosixPath(m.filename).parts)
                ]
                members.sort(key=lambda m: m.filename)
                if len(members) > max_files:
                    outcomes.append(ImportOutcome(filename, error=f"only the first {max_files} files were read"))
                    members = members[:max_files]
                # Sizes come from the archive directory, checked before inflating anything.
                entries = [(f"{filename}:{m.filename}", m.filename, m.file_size) for m in members]
                for member, document in zip(members, _plan(entries, max_file_bytes)):
                    if not (document.error or document.skipped):
                        document.data = _read_member(archive, member, document)
                    documents.append(document)
        except zipfile.BadZipFile:
            outcomes.append(ImportOutcome(filename, error="not a zip archive"))
    return outcomes + _import_documents(documents, proposed_by=proposed_by, default_kind=default_kind)


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, document: _Document) -> bytes | None:
    try:
        return archive.read(member)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError) as exc:
        document.error = f"cannot be read from the archive: {exc}"
        return None


def _plan(entries: list[tuple[str, str, int]], max_file_bytes: int) -> list[_Document]:
    """``(label, path, size)`` of the files of one import -> documents, the skip and size rules applied."""
    folders: dict[PurePosixPath, int] = {}
    for _, path, _ in entries:
        if path.lower().endswith(".md"):
            parent = PurePosixPath(path).parent
            folders[parent] = folders.get(parent, 0) + 1
    documents = []
    for label, path, size in entries:
        document = _Document(label, path)
        posix = PurePosixPath(path)
        if not posix.name.lower().endswith(".md"):
            document.skipped = SKIP_NOT_MARKDOWN
        elif posix.name.lower() == INDEX_NAME and folders[posix.parent] > 1:
            document.skipped = SKIP_INDEX
        elif size > max_file_bytes:
            document.error = f"file too large ({size} bytes; at most {max_file_bytes})"
        else:
            document.readme_alone = posix.name.lower() == INDEX_NAME
        documents.append(document)
    return documents


def _import_documents(documents: list[_Document], *, proposed_by: str, default_kind: str) -> list[ImportOutcome]:
    outcomes = []
    for document in documents:
        outcome = ImportOutcome(document.label, error=document.error, skipped=document.skipped)
        outcomes.append(outcome)
        if outcome.error or outcome.skipped:
            continue
        try:
            text = document.data.decode("utf-8")
        except UnicodeDecodeError:
            outcome.error = "not UTF-8 text (a binary file?)"
            continue
        if document.readme_alone and not text.lstrip("\ufeff").startswith("---"):
            outcome.skipped = SKIP_README
            continue
        try:
            outcome.skill, outcome.unchanged = _import_text(
                text,
                path=document.path,
                proposed_by=proposed_by or f"import of {document.label}"[:200],
                default_kind=default_kind,
            )
        except (SkillFormatError, SkillInputError) as exc:
            outcome.error = str(exc)
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
