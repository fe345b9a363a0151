"""Geometry helpers behind mask_to_world_points and the bounding-box primitive."""

import numpy as np
import pytest

from worker.robot import geometry as geo


def test_quaternion_round_trip_and_wxyz_order():
    q = np.array([0.0, 1.0, 0.0, 0.0])  # half turn about x: gripper pointing down
    R = geo.quat_to_matrix(q)
    assert np.allclose(R, np.diag([1, -1, -1]))
    assert np.allclose(geo.matrix_to_quat(R), q)
    with pytest.raises(ValueError):
        geo.quat_to_matrix([0, 0, 0, 0])


def test_backprojection_inverts_a_pinhole_projection():
    K = np.array([[300.0, 0, 64], [0, 300.0, 64], [0, 0, 1]])
    depth = np.full((128, 128), 2.0)
    depth[0, 0] = 0.0  # invalid pixels are skipped
    pts = geo.backproject(depth, K)
    assert len(pts) == 128 * 128 - 1
    u, v = 100, 30
    p = geo.backproject(depth, K, mask=(np.arange(128)[:, None] == v) & (np.arange(128)[None, :] == u))[0]
    assert np.allclose(K @ p / p[2], [u, v, 1])


def test_transforms_compose_and_invert():
    T = geo.make_transform([0.1, -0.2, 0.3], [np.cos(0.3), 0, 0, np.sin(0.3)])
    pts = np.random.default_rng(0).normal(size=(20, 3))
    assert np.allclose(geo.transform_points(geo.invert_transform(T), geo.transform_points(T, pts)), pts)


def test_oriented_bounding_box_recovers_a_rotated_box():
    rng = np.random.default_rng(1)
    local = rng.uniform(-1, 1, size=(4000, 3)) * np.array([0.10, 0.04, 0.02])
    yaw = 0.6
    R = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    pts = local @ R.T + np.array([0.5, 0.1, 0.8])
    box = geo.oriented_bounding_box(pts)
    assert np.allclose(box["center"], [0.5, 0.1, 0.8], atol=0.005)
    assert np.allclose(box["extent"], [0.2, 0.08, 0.04], atol=0.005)
    assert abs(abs(box["R"][:, 0] @ R[:, 0]) - 1) < 1e-3
    assert np.isclose(np.linalg.det(box["R"]), 1.0)
    with pytest.raises(ValueError):
        geo.oriented_bounding_box(pts[:2])


def test_as_array_names_the_argument_on_bad_input():
    with pytest.raises(ValueError, match="position must have shape"):
        geo.as_array([1, 2], (3,), "position")
    with pytest.raises(ValueError, match="NaN"):
        geo.as_array([1, np.nan, 2], (3,), "position")
