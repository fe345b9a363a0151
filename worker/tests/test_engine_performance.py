"""The engine's performance shortcuts give exactly what the plain computations give."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from worker.engine import limit_blas_threads
from worker.robot.occupancy import POINT_VOXEL, SELF_FILTER, _distance_tree, _first_per_voxel


@pytest.mark.parametrize("seed", range(6))
def test_voxel_thinning_keeps_the_same_points_as_unique_rows(seed):
    rng = np.random.default_rng(seed)
    pts = rng.normal(0.0, 0.4, (int(rng.integers(1, 40_000)), 3)) + rng.normal(0.0, 1.0, 3)
    if seed % 2:
        pts = np.round(pts, 2)  # many points share a cube
    keys = np.floor(pts / POINT_VOXEL).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    assert np.array_equal(_first_per_voxel(pts, POINT_VOXEL), np.sort(first))


@pytest.mark.parametrize("seed", range(4))
def test_the_unbalanced_tree_returns_the_same_distances(seed):
    rng = np.random.default_rng(seed)
    data, queries = rng.random((8_000, 3)), rng.random((6_000, 3))
    if seed % 2:
        data, queries = np.round(data, 2), np.round(queries, 2)  # ties
    plain, _ = cKDTree(data).query(queries, distance_upper_bound=SELF_FILTER)
    fast, _ = _distance_tree(data).query(queries, distance_upper_bound=SELF_FILTER)
    assert np.array_equal(plain, fast)


def test_blas_is_capped_at_one_thread():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    assert limit_blas_threads()
    blas = [lib for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
    assert blas and all(lib["num_threads"] == 1 for lib in blas)
