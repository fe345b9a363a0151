"""The skill library's settings: ``settings.SKILLS`` overrides these defaults key by key."""

from __future__ import annotations

from django.conf import settings

DEFAULTS = {
    # Admission by re-execution (DESIGN section 1, "coordinator").
    "MIN_FLIPPED_SEEDS": 1,  # claimed seeds that must go from failure (before) to success (after)
    "CONTROL_SEEDS": 3,  # passing seeds re-checked for breakage when a proposal names none
    "MAX_VALIDATION_SEEDS": 30,  # claimed + control seeds of one admission, at most
    "REPLACEMENT_MARGIN": 0.1,  # a new version must beat its approved parent by this success-rate margin
    # Retrieval.
    "RETRIEVAL_K": 5,
    "RETRIEVAL_WEIGHTS": {"dense": 0.6, "bm25": 0.4, "signature": 0.2},
    "EMBEDDING_MODEL": "",  # a sentence-transformers model directory; "" = the bundled all-MiniLM-L6-v2
    "EMBEDDING_THREADS": 1,  # torch intra-op threads of the process that embeds (see skills.embeddings)
}


def skills_setting(name: str):
    """The value of one skill-library setting; raises KeyError for a name that has no default."""
    if name not in DEFAULTS:
        raise KeyError(f"unknown skills setting {name!r}")
    return getattr(settings, "SKILLS", {}).get(name, DEFAULTS[name])
