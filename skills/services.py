"""The skill library's domain verbs, in one import for the other apps (the experiment coordinator, the
admin, views and commands). Agents never write the library directly. Each group lives in its own module:

- life cycle (skills.lifecycle): ``propose_skill`` (policy check at once, re-execution queued),
  ``request_validation``, ``approve_skill`` / ``reject_skill`` by a person, ``retire_skill``;
  ``submit_agent_proposal`` hands an agent's proposal to admission; ``parse_seed_list``. Admission
  itself: ``admit_skill`` (skills.admission, run by ``validate_skill_task``).
- retrieval (skills.retrieval): ``retrieve_skills``, ``RetrievalResult``, ``retrieval_weights``,
  ``embodiment_of``, ``signals_from_episode``.
- use by agents (skills.usage): ``LibraryAccess``, ``skill_for_agent``, ``library_sources``,
  ``record_skill_use``, ``record_candidate_skill_use``, ``record_skill_outcome``.
- exchange (skills.exchange): ``import_skill_markdown``, ``import_skill_files``, ``ImportOutcome``,
  ``export_library_zip``, ``export_skill_markdown`` (skills.markdown); the seed library:
  ``install_seed_skills``, ``SEED_DIR``, ``SeedReport``, ``SeedError``.
- a skill's content and the errors (skills.content, skills.markdown, skills.models): ``SkillDraft``,
  ``SkillInputError``, ``SkillFormatError``, ``SkillStateError``.

Failure signals, signatures and code sketches are plain Python in worker.library.
"""

from .admission import admit_skill
from .content import SkillDraft, SkillInputError
from .exchange import (
    SEED_DIR,
    ImportOutcome,
    SeedError,
    SeedReport,
    export_library_zip,
    import_skill_files,
    import_skill_markdown,
    install_seed_skills,
)
from .lifecycle import (
    AGENT_SIGNATURE_TEXT,
    MAX_PROGRAM,
    approve_skill,
    parse_seed_list,
    propose_skill,
    reject_skill,
    request_validation,
    retire_skill,
    submit_agent_proposal,
)
from .markdown import SkillFormatError, export_skill_markdown
from .models import SkillStateError
from .retrieval import RetrievalResult, embodiment_of, retrieval_weights, retrieve_skills, signals_from_episode
from .usage import (
    LibraryAccess,
    library_sources,
    record_candidate_skill_use,
    record_skill_outcome,
    record_skill_use,
    skill_for_agent,
)

__all__ = [
    "AGENT_SIGNATURE_TEXT",
    "MAX_PROGRAM",
    "SEED_DIR",
    "ImportOutcome",
    "LibraryAccess",
    "RetrievalResult",
    "SeedError",
    "SeedReport",
    "SkillDraft",
    "SkillFormatError",
    "SkillInputError",
    "SkillStateError",
    "admit_skill",
    "approve_skill",
    "embodiment_of",
    "export_library_zip",
    "export_skill_markdown",
    "import_skill_files",
    "import_skill_markdown",
    "install_seed_skills",
    "library_sources",
    "parse_seed_list",
    "propose_skill",
    "record_candidate_skill_use",
    "record_skill_outcome",
    "record_skill_use",
    "reject_skill",
    "request_validation",
    "retire_skill",
    "retrieval_weights",
    "retrieve_skills",
    "signals_from_episode",
    "skill_for_agent",
    "submit_agent_proposal",
]
