"""The DeepMind Control adapter: spaces, salient points, time limits, seeding, errors."""

from __future__ import annotations

import numpy as np
import pytest
from dm_control import suite

from saliency_rl.envs import make_env
from saliency_rl.envs.dmc import task_names
from saliency_rl.envs.mujoco_render import project_points
from saliency_rl.errors import EnvSpecError

TASKS = ["walker-walk", "cartpole-swingup", "ball_in_cup-catch", "finger-spin"]


def test_task_names_cover_the_suite() -> None:
    names = task_names()
    assert len(names) == len(suite.ALL_TASKS)
    assert set(TASKS) <= set(names)


@pytest.mark.parametrize("size", [64, 84])
@pytest.mark.parametrize("task", TASKS)
def test_builds_resets_and_steps(task: str, size: int) -> None:
    env = make_env(f"dmc:{task}", image_size=size, seed=0)
    try:
        obs, info = env.reset(seed=0)
        names = env.unwrapped.salient_point_names
        assert info["salient_points"].shape == (len(names), 2)
        assert info["salient_points"].dtype == np.float32
        for _ in range(3):
            assert env.observation_space.contains(obs)
            assert obs["rgb"].shape == (3, size, size) and obs["rgb"].dtype == np.uint8
            assert obs["rgb"].std() > 5  # a rendered scene, not a blank buffer
            assert obs["proprio"].dtype == np.float32 and np.isfinite(obs["proprio"]).all()
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            assert isinstance(reward, float) and not terminated and not truncated
            assert info["salient_points"].shape == (len(names), 2)
        # render() is the newest frame, channels last.
        np.testing.assert_array_equal(env.render(), obs["rgb"].transpose(1, 2, 0))
    finally:
        env.close()


@pytest.mark.parametrize("task", TASKS)
def test_salient_points_land_on_their_bodies(task: str) -> None:
    import mujoco  # here, not at the top: saliency_rl.envs must pick the GL backend first

    size = 64  # the coarsest size we use, where a small geom is a few pixels wide
    env = make_env(f"dmc:{task}", image_size=size, seed=0)
    unwrapped = env.unwrapped
    inside = exact = near = total = 0
    try:
        for seed in range(3):
            _, info = env.reset(seed=seed)
            for state in range(4):
                if state:
                    for _ in range(8):
                        _, _, _, _, info = env.step(env.action_space.sample())
                segmentation = unwrapped.render_segmentation()
                is_geom = segmentation[..., 1] == mujoco.mjtObj.mjOBJ_GEOM
                points = info["salient_points"]
                for (x, y), ids in zip(points, unwrapped.salient_geom_ids, strict=True):
                    total += 1
                    if not (0 <= x < size and 0 <= y < size):
                        continue
                    inside += 1
                    row, col = int(y), int(x)  # pixel (i, j) covers [j, j+1) x [i, i+1)
                    on_body = is_geom & np.isin(segmentation[..., 0], ids)
                    exact += bool(on_body[row, col])
                    around = on_body[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2]
                    near += bool(around.any())
    finally:
        env.close()
    # Points must be where the bodies are, so nearly all are in view ...
    assert inside >= 0.9 * total, (inside, total)
    # ... and on the body's own pixels. A miss can be genuine: the walker's left foot passes
    # behind the right leg (about 1 state in 10 with random actions), so we ask for 90%
    # within one pixel (rasterisation at 64 px moves a thin capsule's edge by a pixel), and
    # a majority exactly on the pixel to show that the 3x3 allowance is not doing the work.
    # Offsets of a geom's radius or more (a body origin at a joint, the cup's empty centre)
    # fail this: at 64 px the feet, the pole and the ball are 2-4 pixels wide.
    assert near >= 0.9 * inside, (near, inside)
    assert exact >= 0.75 * inside, (exact, inside)


def test_tips_are_at_the_far_ends() -> None:
    # The body test above cannot tell a pole's tip from its middle; distances can.
    cartpole = make_env("dmc:cartpole-swingup", seed=0)
    finger = make_env("dmc:finger-spin", image_size=84, seed=0)
    try:
        for seed in range(3):
            cart, tip = cartpole.reset(seed=seed)[1]["salient_points"]
            # The 1 m pole spans 19 px at 64 px from 4 m away (fovy 45): its tip, not its middle.
            assert np.linalg.norm(tip - cart) > 15
            points = finger.reset(seed=seed)[1]["salient_points"]
            for _ in range(5):
                points = finger.step(finger.action_space.sample())[4]["salient_points"]
            physics = finger.unwrapped.physics
            ends = np.stack(
                [physics.named.data.site_xpos["tip"], physics.named.data.xpos["spinner"]]
            )
            site, hinge = project_points(
                physics.model.ptr, physics.data.ptr, finger.unwrapped.camera, ends, 84, 84
            )
            # The spinner's tip is the end carrying the `tip` site, away from the hinge.
            assert np.linalg.norm(points[1] - site) < np.linalg.norm(points[1] - hinge)
            assert np.linalg.norm(points[1] - hinge) > 4
    finally:
        cartpole.close()
        finger.close()


@pytest.mark.parametrize(("repeat", "steps"), [(4, 250), (3, 334)])
def test_action_repeat_truncates_at_the_suite_time_limit(repeat: int, steps: int) -> None:
    # 1000 control steps, rounded up to whole environment steps.
    env = make_env("dmc:cartpole-swingup", action_repeat=repeat, seed=0)
    try:
        env.reset(seed=0)
        for step in range(1, steps + 1):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            assert not terminated
            assert truncated == (step == steps)
        with pytest.raises(RuntimeError, match="reset"):
            env.step(env.action_space.sample())
        env.reset()  # a new episode runs the full length again
        assert not env.step(env.action_space.sample())[3]
    finally:
        env.close()


def test_action_repeat_sums_rewards() -> None:
    # balance starts upright, so every control step earns a reward of nearly 1.
    env = make_env("dmc:cartpole-balance", action_repeat=4, seed=0)
    try:
        env.reset(seed=0)
        _, reward, _, _, _ = env.step(np.zeros(1, np.float32))
        assert 3.0 < reward <= 4.0
    finally:
        env.close()


@pytest.mark.parametrize(("repeat", "length"), [(2, 7), (8, 200)])
def test_episode_length_option(repeat: int, length: int) -> None:
    # 200 steps of 8 go past the suite's own 1000 control steps: the option wins.
    env = make_env("dmc:cartpole-swingup", action_repeat=repeat, episode_length=length, seed=0)
    try:
        env.reset(seed=0)
        for step in range(1, length + 1):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            assert not terminated and truncated == (step == length)
    finally:
        env.close()


def _rollout(env, seed: int, actions: np.ndarray) -> tuple[np.ndarray, list[float]]:
    obs, _ = env.reset(seed=seed)
    rewards = [env.step(action)[1] for action in actions]
    return obs["rgb"], rewards


def test_same_seed_same_frames_and_rewards() -> None:
    actions = np.random.default_rng(0).uniform(-1, 1, (10, 6)).astype(np.float32)
    first = make_env("dmc:walker-walk", seed=3)
    second = make_env("dmc:walker-walk", seed=3)
    try:
        frame, rewards = _rollout(first, 3, actions)
        frame_2, rewards_2 = _rollout(second, 3, actions)
        np.testing.assert_array_equal(frame, frame_2)
        assert rewards == rewards_2
        # reset(seed=...) re-seeds the same env; another seed gives another start.
        np.testing.assert_array_equal(_rollout(first, 3, actions)[0], frame)
        assert not np.array_equal(_rollout(first, 4, actions[:1])[0], frame)
        # The seed given at construction decides the first reset without a seed.
        third = make_env("dmc:walker-walk", seed=3)
        np.testing.assert_array_equal(third.reset()[0]["rgb"], frame)
        third.close()
    finally:
        first.close()
        second.close()


def test_unknown_task_suggests_close_matches() -> None:
    with pytest.raises(EnvSpecError, match="cartpole-swingup"):
        make_env("dmc:cartpole-swingupp")


@pytest.mark.parametrize("camera", ["nope", 7])
def test_bad_camera_is_an_env_spec_error(camera: str | int) -> None:
    with pytest.raises(EnvSpecError, match="camera"):
        make_env("dmc:cartpole-swingup", camera=camera)


def test_unknown_option_is_an_env_spec_error() -> None:
    with pytest.raises(EnvSpecError, match="grayscale"):
        make_env("dmc:cartpole-swingup", grayscale=True)


def test_camera_by_name_and_default_cameras() -> None:
    env = make_env("dmc:cartpole-swingup", camera="lookatcart")
    assert env.unwrapped.camera == 1
    env.close()
    # DrQ renders quadruped from camera 2; building it also checks our NumPy 2.4 fix.
    env = make_env("dmc:quadruped-walk", seed=0)
    try:
        assert env.unwrapped.camera == 2
        obs, info = env.reset(seed=0)
        env.step(env.action_space.sample())
        assert info["salient_points"].shape == (1, 2)
    finally:
        env.close()


def test_frame_stack() -> None:
    env = make_env("dmc:finger-spin", image_size=64, frame_stack=3, seed=0)
    try:
        obs, _ = env.reset(seed=0)
        assert obs["rgb"].shape == (9, 64, 64)
        obs, *_ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
    finally:
        env.close()


def test_default_render_quality_looks_alike() -> None:
    fast = make_env("dmc:walker-walk", seed=0)
    default = make_env("dmc:walker-walk", seed=0, render_quality="default")
    try:
        frame = fast.reset(seed=0)[0]["rgb"].astype(np.int16)
        frame_default = default.reset(seed=0)[0]["rgb"].astype(np.int16)
        # Shadows and antialiasing change a few pixels, not the scene (we saw a mean of ~7).
        assert np.abs(frame - frame_default).mean() < 25
    finally:
        fast.close()
        default.close()
