"""Hybrid retrieval over the skill library: sentence embeddings + BM25, filtered by status and embodiment.

The indexed text of a skill is its description and failure signature (``Skill.retrieval_text``). A
query is the task instruction plus, during repair, the observed failure signals in words. Scores:

    hybrid    = w_dense * max(cosine, 0) + w_bm25 * bm25 / max(bm25 over the filtered skills)
    score     = hybrid + w_signature * match_signature(skill signature, observed signals)

The signature term re-ranks the best ``RERANK_POOL`` hybrid candidates only (it is a Python loop; the
rest is vectorised). BM25 is rank-bm25's BM25Okapi (its idf, k1 and b), evaluated as one precomputed
sparse matrix so a query costs a column sum instead of a loop over every document; idf is computed
over the whole library, not the filtered part.

One index per process, rebuilt when the library changes (count and the newest ``content_changed_at``
of the skills differ from the ones it was built from). Building it computes the embeddings that are
missing or stale (their text hash differs) and stores them in SkillEmbedding.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from dataclasses import dataclass

import numpy as np
from django.db.models import Count, Max
from scipy import sparse

from . import embeddings
from .models import Skill, SkillEmbedding
from .signatures import match_signature

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
        return {"skill": self.skill_id, "name": self.name, "version": self.version, "score": round(self.score, 5),
                "dense": round(self.dense, 5), "bm25": round(self.bm25, 5), "signature": round(self.signature, 3)}


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
        self.signatures = [s.trace_signals or {} for s in skills]
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

    def search(self, query_vector: np.ndarray, query_tokens: list[str], observed: dict, *, statuses, embodiment: str,
               kinds: list[str] | None, k: int, weights: dict) -> list[Hit]:
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
            hits.append(Hit(int(self.ids[i]), self.names[i], self.versions[i],
                            float(hybrid[j] + weights["signature"] * signature), float(dense[j]), float(lexical[j]), signature))
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
    agg = Skill.objects.aggregate(n=Count("id"), changed=Max("content_changed_at"))
    return (agg["n"], agg["changed"], embeddings.model_id())


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
            [SkillEmbedding(skill_id=skills[i].pk, model_name=model, text_hash=hashes[i], dim=fresh.shape[1],
                            vector=fresh[j].astype("<f4").tobytes()) for j, i in enumerate(stale)],
            update_conflicts=True, unique_fields=["skill"], update_fields=["model_name", "text_hash", "dim", "vector", "updated_at"],
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
