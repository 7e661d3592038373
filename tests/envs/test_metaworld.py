"""Meta-World adapter: spaces, randomised and seeded resets, upright frames, salient points
that land on their bodies, and the scripted experts."""

from __future__ import annotations

import numpy as np
import pytest

# saliency_rl.envs first: it chooses MuJoCo's GL backend, which must precede importing mujoco
# (metaworld imports it).
from saliency_rl.envs import make_env, task_names
from saliency_rl.envs.mujoco_render import project_points
from saliency_rl.errors import EnvSpecError

pytest.importorskip("metaworld")

TASKS = ["reach", "drawer-open", "faucet-open", "door-open"]
GEOM = 5  # mujoco.mjtObj.mjOBJ_GEOM, the object type of geoms in a segmentation image


@pytest.fixture(scope="module")
def env_of():
    """``env_of(task, size)``: one env per task and size, shared by the tests of this file."""
    envs = {}

    def get(task: str, size: int = 64):
        if (task, size) not in envs:
            envs[task, size] = make_env(f"metaworld:{task}", image_size=size, seed=0)
        return envs[task, size]

    yield get
    for env in envs.values():
        env.close()


def test_task_names():
    names = task_names("metaworld")
    assert len(names) == 50
    assert {*TASKS, "pick-place"} <= set(names)
    assert not any(name.endswith("-v3") for name in names)


@pytest.mark.parametrize("size", [64, 84])
@pytest.mark.parametrize("task", TASKS)
def test_observations_and_steps(env_of, task, size):
    env = env_of(task, size)
    obs, info = env.reset(seed=1)
    for _ in range(3):
        assert env.observation_space.contains(obs)
        assert obs["rgb"].shape == (3, size, size) and obs["rgb"].dtype == np.uint8
        assert obs["rgb"].std() > 10  # a scene, not a blank frame
        assert obs["proprio"].shape == (4,) and obs["proprio"].dtype == np.float32
        np.testing.assert_allclose(obs["proprio"], info["state"][:4], rtol=1e-6)
        assert info["state"].shape == (39,)
        points = info["salient_points"]
        assert points.dtype == np.float32
        assert points.shape == (len(env.unwrapped.salient_point_names), 2)
        assert len(env.unwrapped.salient_geom_ids) == len(points)
        assert np.all((points >= 0) & (points <= size)), points  # all in view at the start
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert isinstance(reward, float) and isinstance(info["success"], bool)
        assert not terminated and not truncated
    assert env.unwrapped.mw_env.render_mode is None  # Meta-World's own renderer stays idle
    assert not env.unwrapped.mw_env.mujoco_renderer._viewers


@pytest.mark.parametrize("task", TASKS)
def test_each_reset_draws_new_positions_and_seeds_repeat_them(env_of, task):
    env = env_of(task)
    first, info = env.reset(seed=3)
    _, other = env.reset()
    # state[4:7] is the object (or handle), state[36:39] the goal.
    assert not np.allclose(info["state"][4:7], other["state"][4:7])
    assert not np.allclose(info["state"][36:39], other["state"][36:39])
    again, info_again = env.reset(seed=3)
    np.testing.assert_array_equal(first["rgb"], again["rgb"])
    np.testing.assert_array_equal(info["state"], info_again["state"])


def test_seed_of_make_env_is_that_of_reset(env_of):
    env = make_env("metaworld:drawer-open", seed=3)
    obs, _ = env.reset()
    env.close()
    np.testing.assert_array_equal(obs["rgb"], env_of("drawer-open").reset(seed=3)[0]["rgb"])


@pytest.mark.parametrize("camera", [None, "corner2", "corner3", "corner4", "behindGripper"])
def test_frames_are_upright(camera):
    # The table must lie below the gripper hovering over it: an upside-down image (as the
    # corner cameras, mounted upside down, give unless turned) has it above.
    env = make_env("metaworld:drawer-open", seed=0, camera=camera)
    env.reset()
    seg = env.unwrapped.render_segmentation()
    model = env.unwrapped.model
    table = [g for g in range(model.ngeom) if model.geom_bodyid[g] == model.body("tablelink").id]
    gripper = env.unwrapped.salient_geom_ids[0]
    rows = np.arange(seg.shape[0])[:, None].repeat(seg.shape[1], axis=1)
    is_geom = seg[..., 1] == GEOM
    table_row = rows[is_geom & np.isin(seg[..., 0], table)].mean()
    gripper_row = rows[is_geom & np.isin(seg[..., 0], gripper)].mean()
    env.close()
    assert table_row > gripper_row + 3, (table_row, gripper_row)


def _expert_rollouts(env) -> dict:
    """Three seeded expert episodes; every 10th frame, whether each salient point with
    bodies lands on them, and whether the goal point is ``env._target_pos`` projected."""
    unwrapped = env.unwrapped
    size = unwrapped.observation_space["rgb"].shape[1]
    successes, hits, samples = [], np.zeros(len(unwrapped.salient_geom_ids)), 0
    for seed in range(3):
        obs, info = env.reset(seed=seed)
        success_at = None
        for step in range(500):
            if step % 10 == 0:
                seg = unwrapped.render_segmentation()
                points = info["salient_points"]
                for i, ids in enumerate(unwrapped.salient_geom_ids):
                    x, y = np.floor(points[i]).astype(int)
                    window = seg[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
                    hits[i] += np.any(np.isin(window[..., 0], ids) & (window[..., 1] == GEOM))
                samples += 1
                # The goal is a site, not a geom: check its point is the simulator's goal,
                # projected and turned like the (checked) hand point, and in the image.
                world = np.stack([unwrapped.data.geom("rail").xpos, unwrapped.mw_env._target_pos])
                hand, goal = project_points(
                    unwrapped.model, unwrapped.data, unwrapped.camera, world, size, size
                )
                if not np.allclose(hand, points[0], atol=1e-3):
                    goal = size - goal  # the image was turned by 180 degrees
                np.testing.assert_allclose(points[-1], goal, atol=1e-3)
                assert np.all((goal >= 0) & (goal <= size))
            obs, _, _, truncated, info = env.step(unwrapped.expert_action())
            if info["success"] and success_at is None:
                success_at = step
            if truncated or (success_at is not None and step >= success_at + 20):
                break  # a few frames after success show the object where the task wants it
        successes.append(success_at is not None)
    return {"successes": successes, "hit_rate": hits / samples}


@pytest.fixture(scope="module")
def rollouts_of(env_of):
    """``rollouts_of(task)``: the expert episodes of a task, run once for the tests below."""
    done = {}

    def get(task: str) -> dict:
        if task not in done:
            done[task] = _expert_rollouts(env_of(task))
        return done[task]

    return get


@pytest.mark.parametrize("task", TASKS)
def test_expert_succeeds(rollouts_of, task):
    assert sum(rollouts_of(task)["successes"]) >= 2


@pytest.mark.parametrize("task", TASKS)
def test_visible_salient_points_land_on_their_bodies(env_of, rollouts_of, task):
    # Criterion: the 3x3 pixels around the point (rounding and the geom's edge can shift it
    # by a pixel) show a geom of its body in at least 80% of the frames of expert episodes.
    # Not all of them: while the gripper grasps a handle it hides it from the camera.
    env, rates = env_of(task), rollouts_of(task)["hit_rate"]
    names, geom_ids = env.unwrapped.salient_point_names, env.unwrapped.salient_geom_ids
    for name, ids, rate in zip(names, geom_ids, rates, strict=True):
        if ids:
            assert rate >= 0.8, (name, rate)


def test_action_repeat_and_episode_length():
    env = make_env("metaworld:reach", image_size=16, action_repeat=2, episode_length=3, seed=0)
    env.reset()
    truncations = [env.step(env.action_space.sample())[3] for _ in range(3)]
    assert truncations == [False, False, True]
    assert env.unwrapped.mw_env.curr_path_length == 6  # simulator steps
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.action_space.sample())
    env.close()
    env = make_env("metaworld:reach-v3", image_size=16, action_repeat=2)
    assert env.unwrapped.episode_length == 250  # Meta-World's 500 simulator steps
    env.close()


def test_frame_stack_and_default_render_quality():
    env = make_env("metaworld:door-open", image_size=16, frame_stack=3, render_quality="default")
    obs, _ = env.reset(seed=0)
    assert obs["rgb"].shape == (9, 16, 16) and obs["rgb"].std() > 10
    env.close()


def test_errors():
    with pytest.raises(EnvSpecError, match="drawer-open"):
        make_env("metaworld:drawer-opn")
    for camera in ("nope", 99):
        with pytest.raises(EnvSpecError, match="corner"):
            make_env("metaworld:reach", camera=camera)
    with pytest.raises(EnvSpecError, match="grayscale"):
        make_env("metaworld:reach", grayscale=True)
