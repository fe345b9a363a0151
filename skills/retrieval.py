"""Retrieval from the skill library: ``retrieve_skills`` (the verb: validate, search, log a SkillRetrieval),
``signals_from_episode`` (a stored episode's failure signals, the query's other half during repair) and
the index behind them: sentence embeddings + BM25, filtered by status and embodiment.

The indexed text of a skill is its description and failure signature (``Skill.retrieval_text``). A
query is the task instruction plus, during repair, the observed failure signals in words. Scores:

    hybrid    = w_dense * max(cosine, 0) + w_bm25 * bm25 / max(bm25 over the filtered skills)
    score     = hybrid + w_signature * match_signature(skill signature, observed signals)

Signatures are read as stored (worker.library.signatures.read_signature) and matched with
worker.library.signatures.match_signature. The signature term re-ranks the best ``RERANK_POOL`` hybrid
candidates only (it is a Python loop; the rest is vectorised). BM25 is rank-bm25's BM25Okapi (its idf,
k1 and b), evaluated as one precomputed sparse matrix so a query costs a column sum instead of a loop
over every document; idf is computed over the whole library, not the filtered part.

One index per process, rebuilt when the library changes (count and the newest ``content_changed_at``
of the skills differ from the ones it was built from). Building it computes the embeddings that are
missing or stale (their text hash differs) and stores them in SkillEmbedding.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from django.db.models import Max
from scipy import sparse

from runs.models import Candidate, Episode, Run, Task
from worker.library.signals import extract_signals
from worker.library.signatures import (
    SignalsError,
    describe_signals,
    match_signature,
    normalise_observed,
    read_signature,
)
from worker.sim import catalog

from . import embeddings
from .conf import skills_setting
from .content import SkillInputError
from .models import Skill, SkillEmbedding, SkillRetrieval

RERANK_POOL = 64
TOKEN_RE = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")
STOPWORDS = frozenset(
    """a an and are as at be by for from has have in into is it its of on or that the then this to was
    were when which while with without not no do does did can could should would will it's""".split()
)


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens for BM25; status codes such as GRASP_EMPTY also yield their parts."""
    out = []
    for token in TOKEN_RE.findall((text or "").lower()):
        if token in STOPWORDS:
            continue
        out.append(token)
        if "_" in token:
            out.extend(part for part in token.split("_") if part not in STOPWORDS)
    return out


@dataclass
class Hit:
    """One retrieved skill: ``score`` ranks; ``dense`` is the cosine, ``bm25`` the raw BM25 score,
    ``signature`` the failure-signature match fraction (0 when no signals were given)."""

    skill_id: int
    name: str
    version: int
    score: float
    dense: float
    bm25: float
    signature: float
    skill: Skill | None = None

    def as_dict(self) -> dict:
        return {
            "skill": self.skill_id,
            "name": self.name,
            "version": self.version,
            "score": round(self.score, 5),
            "dense": round(self.dense, 5),
            "bm25": round(self.bm25, 5),
            "signature": round(self.signature, 3),
        }


class LibraryIndex:
    """The vectors, BM25 matrix and filter columns of every skill in the library at one moment."""

    def __init__(self, stamp: tuple, skills: list[Skill], texts: list[str], vectors: np.ndarray):
        self.stamp = stamp
        self.ids = np.array([s.pk for s in skills], dtype=np.int64)
        self.names = [s.name for s in skills]
        self.versions = [s.version for s in skills]
        # Filter columns as small integer codes: comparing codes is far cheaper than comparing strings.
        self._codes: dict[str, dict[str, int]] = {"status": {}, "embodiment": {}, "kind": {}}
        self.statuses = self._encode("status", [s.status for s in skills])
        self.embodiments = self._encode("embodiment", [s.embodiment.strip().lower() for s in skills])
        self.kinds = self._encode("kind", [s.kind for s in skills])
        self.signatures = [read_signature(s.trace_signals) for s in skills]
        self.vectors = vectors
        self.vocab, self.bm25 = _bm25_matrix([tokenize(text) for text in texts])
        self._candidates: dict[tuple, np.ndarray] = {}

    def _encode(self, column: str, values: list[str]) -> np.ndarray:
        codes = self._codes[column]
        return np.array([codes.setdefault(v, len(codes)) for v in values], dtype=np.int32)

    def candidates(self, statuses, embodiment: str, kinds) -> np.ndarray:
        """Row numbers of the skills the filters keep (cached per filter combination)."""
        key = (tuple(sorted(statuses)), embodiment.strip().lower(), tuple(sorted(kinds or ())))
        rows = self._candidates.get(key)
        if rows is None:

            def codes(column, values):
                return [self._codes[column][v] for v in values if v in self._codes[column]]

            mask = np.isin(self.statuses, codes("status", key[0]))
            if key[1]:
                mask &= np.isin(self.embodiments, codes("embodiment", [key[1], ""]))
            if key[2]:
                mask &= np.isin(self.kinds, codes("kind", key[2]))
            rows = self._candidates[key] = np.flatnonzero(mask)
        return rows

    def __len__(self) -> int:
        return len(self.ids)

    def search(
        self,
        query_vector: np.ndarray,
        query_tokens: list[str],
        observed: dict,
        *,
        statuses,
        embodiment: str,
        kinds: list[str] | None,
        k: int,
        weights: dict,
    ) -> list[Hit]:
        """The ``k`` best skills among those with a status in ``statuses``, the given embodiment (or
        none) and, when ``kinds`` is given, one of those kinds; best first."""
        if not len(self):
            return []
        candidates = self.candidates(statuses, embodiment, kinds)
        if not len(candidates):
            return []
        # One matrix-vector product over every skill, then the filtered rows: cheaper than copying the
        # filtered rows of the matrix first.
        dense = (self.vectors @ query_vector)[candidates]
        lexical = self._bm25_scores(query_tokens, candidates)
        top_lexical = float(lexical.max()) if len(lexical) else 0.0
        hybrid = weights["dense"] * np.clip(dense, 0.0, None)
        if top_lexical > 0:
            hybrid = hybrid + weights["bm25"] * lexical / top_lexical
        pool = min(len(candidates), max(RERANK_POOL, k))
        order = np.argpartition(-hybrid, pool - 1)[:pool] if pool < len(candidates) else np.arange(len(candidates))
        hits = []
        for j in order:
            i = int(candidates[j])
            signature = match_signature(self.signatures[i], observed) if observed else 0.0
            score = float(hybrid[j] + weights["signature"] * signature)
            hits.append(
                Hit(
                    int(self.ids[i]),
                    self.names[i],
                    self.versions[i],
                    score,
                    float(dense[j]),
                    float(lexical[j]),
                    signature,
                )
            )
        hits.sort(key=lambda h: (-h.score, h.skill_id))
        return hits[:k]

    def _bm25_scores(self, tokens: list[str], rows: np.ndarray) -> np.ndarray:
        counts = Counter(t for t in tokens if t in self.vocab)
        if not counts or self.bm25 is None:
            return np.zeros(len(rows))
        cols = [self.vocab[t] for t in counts]
        weights = np.array([counts[t] for t in counts], dtype=np.float64)
        # A query term repeated n times counts n times, exactly as BM25Okapi.get_scores adds it.
        return np.asarray(self.bm25[:, cols] @ weights).ravel()[rows]


def _bm25_matrix(corpus: list[list[str]]):
    """({term: column}, CSC matrix docs x terms of BM25Okapi term weights), or ({}, None) for no text."""
    from rank_bm25 import BM25Okapi

    if not any(corpus):
        return {}, None
    model = BM25Okapi(corpus)
    vocab = {term: j for j, term in enumerate(model.idf)}
    rows, cols, data = [], [], []
    for i, freqs in enumerate(model.doc_freqs):
        norm = model.k1 * (1 - model.b + model.b * model.doc_len[i] / model.avgdl)
        for term, tf in freqs.items():
            rows.append(i)
            cols.append(vocab[term])
            data.append(model.idf[term] * tf * (model.k1 + 1) / (tf + norm))
    matrix = sparse.csr_matrix((data, (rows, cols)), shape=(len(corpus), len(vocab))).tocsc()
    return vocab, matrix


_lock = threading.Lock()
_index: LibraryIndex | None = None


def library_stamp() -> tuple:
    """(skills, newest content_changed_at, embedding model): what the index was built from. Two queries on
    purpose: MAX alone is read from the content_changed_at index (a seek), while COUNT and MAX in one
    SELECT made SQLite scan that index end to end, 35 ms a query at 100,000 skills
    (bench/skill_retrieval.py)."""
    changed = Skill.objects.aggregate(changed=Max("content_changed_at"))["changed"]
    return (Skill.objects.count(), changed, embeddings.model_id())


def current_index() -> LibraryIndex:
    """This process's index of the library, rebuilt first when the library changed since it was built."""
    global _index
    stamp = library_stamp()
    with _lock:
        if _index is None or _index.stamp != stamp:
            _index = build_index(stamp)
        return _index


def build_index(stamp: tuple | None = None) -> LibraryIndex:
    skills = list(Skill.objects.order_by("pk"))
    texts = [s.retrieval_text() for s in skills]
    vectors = ensure_embeddings(skills, texts)
    return LibraryIndex(stamp or library_stamp(), skills, texts, vectors)


def ensure_embeddings(skills: list[Skill], texts: list[str]) -> np.ndarray:
    """(len(skills), dim) vectors of ``texts`` (the skills' retrieval texts), computing and storing the
    ones that are missing or stale (stored for another text or another model)."""
    model = embeddings.model_id()
    cached = {e.skill_id: e for e in SkillEmbedding.objects.filter(model_name=model)}
    hashes = [hashlib.sha256(text.encode("utf-8")).hexdigest() for text in texts]
    stale = [i for i, s in enumerate(skills) if s.pk not in cached or cached[s.pk].text_hash != hashes[i]]
    fresh = embeddings.encode([texts[i] for i in stale]) if stale else None
    if stale:
        SkillEmbedding.objects.bulk_create(
            [
                SkillEmbedding(
                    skill_id=skills[i].pk,
                    model_name=model,
                    text_hash=hashes[i],
                    dim=fresh.shape[1],
                    vector=fresh[j].astype("<f4").tobytes(),
                )
                for j, i in enumerate(stale)
            ],
            update_conflicts=True,
            unique_fields=["skill"],
            update_fields=["model_name", "text_hash", "dim", "vector", "updated_at"],
            batch_size=500,
        )
    if not skills:
        return np.zeros((0, 0), dtype=np.float32)
    dim = fresh.shape[1] if fresh is not None else cached[skills[0].pk].dim
    out = np.empty((len(skills), dim), dtype=np.float32)
    fresh_rows = {i: j for j, i in enumerate(stale)}
    for i, skill in enumerate(skills):
        out[i] = fresh[fresh_rows[i]] if i in fresh_rows else np.frombuffer(bytes(cached[skill.pk].vector), dtype="<f4")
    return out


def reset_index() -> None:
    """Forget this process's index (tests; a model change)."""
    global _index
    with _lock:
        _index = None


# -- the verbs -------------------------------------------------------------------------------------------
@dataclass
class RetrievalResult:
    """The ranked hits (each with its Skill attached) and the log row (None when not logged)."""

    hits: list[Hit] = field(default_factory=list)
    retrieval: SkillRetrieval | None = None

    @property
    def skills(self) -> list[Skill]:
        return [h.skill for h in self.hits]


def embodiment_of(task: Task) -> str:
    """The robot model of a task's arms ("Panda"), from the engine catalog; "" when unknown."""
    spec = catalog.TASKS.get(task.key)
    return spec.robots[0] if spec and spec.robots else ""


def retrieve_skills(
    *,
    instruction: str = "",
    signals: dict | None = None,
    task: Task | None = None,
    embodiment: str | None = None,
    statuses=(Skill.Status.APPROVED,),
    kinds=None,
    k: int | None = None,
    run: Run | None = None,
    candidate: Candidate | None = None,
    agent_call_id: int | None = None,
    log_use: bool = True,
) -> RetrievalResult:
    """The top-k skills for a task instruction and, during repair, the failure signals of a trace.

    ``signals``: observed failure signals, with the keys of worker.library.signals (a search episode's
    ``signals`` as they are; ``signals_from_episode`` reads them from a stored episode).
    ``task`` supplies the instruction and embodiment when they are not given; ``embodiment`` filters
    to skills of that robot or of none. Only skills with a status in ``statuses`` (approved by
    default) are returned. The retrieval is logged as a SkillRetrieval (query, scores, skill ids,
    run/candidate/agent call) unless ``log_use`` is false. Raises SkillInputError on bad input.
    """
    started = time.perf_counter()
    if task is not None:
        instruction = instruction or task.instruction
        embodiment = embodiment_of(task) if embodiment is None else embodiment
    embodiment = (embodiment or "").strip()
    try:
        observed = normalise_observed(signals)
    except SignalsError as exc:
        raise SkillInputError("signals", str(exc)) from None
    instruction = (instruction or "").strip()
    if not instruction and not observed:
        raise SkillInputError("instruction", "give a task instruction, failure signals, or both")
    k = skills_setting("RETRIEVAL_K") if k is None else k
    if not isinstance(k, int) or not 1 <= k <= 50:
        raise SkillInputError("k", "k is an integer from 1 to 50")
    statuses = list(statuses)
    bad = [s for s in statuses if s not in Skill.Status.values]
    if bad or not statuses:
        raise SkillInputError("statuses", f"statuses are among {', '.join(Skill.Status.values)}")
    kinds = list(kinds or [])
    if any(kind not in Skill.Kind.values for kind in kinds):
        raise SkillInputError("kinds", f"kinds are among {', '.join(Skill.Kind.values)}")

    query = "\n".join(p for p in (instruction, describe_signals(observed)) if p)
    index = current_index()
    vector = embeddings.encode_query(query)
    hits = index.search(
        vector,
        tokenize(query),
        observed,
        statuses=statuses,
        embodiment=embodiment,
        kinds=kinds,
        k=k,
        weights=retrieval_weights(),
    )
    by_id = Skill.objects.in_bulk([h.skill_id for h in hits])
    hits = [h for h in hits if h.skill_id in by_id]
    for hit in hits:
        hit.skill = by_id[hit.skill_id]
    result = RetrievalResult(hits=hits)
    if log_use:
        result.retrieval = SkillRetrieval.objects.create(
            instruction=instruction,
            signals=observed,
            query=query,
            embodiment=embodiment,
            statuses=statuses,
            k=k,
            results=[h.as_dict() for h in hits],
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            run=run,
            candidate=candidate,
            agent_call_id=agent_call_id,
        )
    return result


def retrieval_weights() -> dict:
    """The weights of the dense, BM25 and signature terms (settings override the defaults)."""
    weights = {"dense": 0.6, "bm25": 0.4, "signature": 0.2}
    weights.update(skills_setting("RETRIEVAL_WEIGHTS") or {})
    return weights


def signals_from_episode(episode: Episode) -> dict:
    """The observed failure signals of a stored episode that a signature is matched on: its calls (the
    PrimitiveCall rows, in order) through the one extractor (worker.library.signals), validated and kept
    to the matched keys (worker.library.signatures.normalise_observed)."""
    return normalise_observed(extract_signals(list(episode.calls.order_by("seq")), episode.status, episode.error))
