"""Distractor modes: the background changes, the agent and the physics do not; seeding."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from saliency_rl.envs import make_env
from saliency_rl.envs.distractors import DISTRACTOR_MODES, MovingBackground, scene_parts
from saliency_rl.errors import EnvSpecError

SPECS = ["dmc:cartpole-swingup", "dmc:walker-walk", "metaworld:reach"]


@pytest.fixture(scope="module")
def clean_envs():
    envs = {spec: make_env(spec, seed=0) for spec in SPECS}
    yield envs
    for env in envs.values():
        env.close()


def _masks(env) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sky, easy geoms, hard geoms) pixel masks of the current state, from segmentation."""
    seg = env.unwrapped.render_segmentation()
    ids, is_geom = seg[..., 0], seg[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM)
    parts = scene_parts(env)
    easy = is_geom & np.isin(ids, parts.easy_geoms)
    hard = is_geom & np.isin(ids, parts.hard_geoms)
    return ids < 0, easy, hard


def _step_both(clean, distracted, seed: int):
    clean_out = clean.reset(seed=seed)
    out = distracted.reset(seed=seed)
    yield clean_out, out
    rng = np.random.default_rng(seed)
    for _ in range(1):
        action = rng.uniform(-1, 1, clean.action_space.shape).astype(np.float32)
        yield clean.step(action), distracted.step(action)


@pytest.mark.parametrize("mode", DISTRACTOR_MODES)
@pytest.mark.parametrize("spec", SPECS)
def test_background_changes_agent_and_physics_do_not(clean_envs, spec: str, mode: str) -> None:
    clean = clean_envs[spec]
    env = make_env(spec, seed=0, distractor=mode)
    try:
        previous_background = None
        for clean_out, out in _step_both(clean, env, seed=3):
            clean_obs, obs = clean_out[0], out[0]
            clean_info, info = clean_out[-1], out[-1]
            # Physics, proprio and salient points are those of the clean env.
            np.testing.assert_array_equal(obs["proprio"], clean_obs["proprio"])
            np.testing.assert_array_equal(info["salient_points"], clean_info["salient_points"])
            np.testing.assert_array_equal(
                env.unwrapped.render_segmentation(), clean.unwrapped.render_segmentation()
            )
            sky, easy, hard = _masks(env)
            replaced = sky | easy | (hard if mode == "video_hard" else False)
            frame, clean_frame = obs["rgb"].astype(int), clean_obs["rgb"].astype(int)
            difference = np.abs(frame - clean_frame).mean(axis=0)  # (H, W)
            np.testing.assert_array_equal(env.render(), obs["rgb"].transpose(1, 2, 0))
            if mode.startswith("video"):
                assert replaced.sum() > 200  # a real part of the image is background
                assert difference[replaced].mean() > 20
                # Everything else, the agent included, is exactly the clean render.
                np.testing.assert_array_equal(frame[:, ~replaced], clean_frame[:, ~replaced])
                if mode == "video_easy":
                    np.testing.assert_array_equal(frame[:, hard], clean_frame[:, hard])
                # The background moves from step to step.
                if previous_background is not None:
                    both = replaced & previous_background[1]
                    moved = np.abs(frame[:, both] - previous_background[0][:, both]).mean()
                    assert moved > 1
                previous_background = (frame, replaced)
            else:
                # Sky and floor (Meta-World: table, walls, floor) take new colours.
                colored = sky | easy | hard
                assert difference[sky].mean() > 3
                assert difference[colored & ~sky].mean() > 3
    finally:
        env.close()


@pytest.mark.parametrize("mode", ["color_hard", "video_easy"])
def test_seeded_draws_repeat_and_differ_between_seeds(mode: str) -> None:
    first = make_env("dmc:cartpole-swingup", seed=0, distractor=mode)
    second = make_env("dmc:cartpole-swingup", seed=0, distractor=mode)
    try:
        a = first.reset(seed=7)[0]["rgb"]
        b = second.reset(seed=7)[0]["rgb"]
        np.testing.assert_array_equal(a, b)
        first.reset(seed=8)
        c = second.reset(seed=8)[0]["rgb"]
        assert np.abs(a.astype(int) - c).mean() > 2
        # Colours are drawn around the defaults, not around the previous draw: no drift.
        np.testing.assert_array_equal(second.reset(seed=7)[0]["rgb"], a)
        first.reset(seed=7)
        # reset() without a seed: a sequence seeded by make_env's seed.
        unseeded = [env.reset()[0]["rgb"] for env in (first, second)]
        np.testing.assert_array_equal(*unseeded)
    finally:
        first.close()
        second.close()


def test_agent_colour_is_drawn_in_colour_modes(clean_envs) -> None:
    clean = clean_envs["dmc:walker-walk"]
    env = make_env("dmc:walker-walk", seed=0, distractor="color_hard")
    try:
        clean_obs, _ = clean.reset(seed=1)
        obs, _ = env.reset(seed=1)
        seg = env.unwrapped.render_segmentation()
        torso = seg[..., 0] == mujoco.mj_name2id(env.unwrapped.physics.model.ptr, 5, "torso")
        assert torso.sum() > 20
        assert np.abs(obs["rgb"][:, torso].astype(int) - clean_obs["rgb"][:, torso]).mean() > 3
    finally:
        env.close()


def test_every_stacked_frame_is_distracted(clean_envs) -> None:
    env = make_env("dmc:cartpole-swingup", seed=0, frame_stack=3, distractor="video_hard")
    try:
        env.reset(seed=2)
        for _ in range(3):
            obs, *_ = env.step(np.zeros(1, np.float32))
        frames = obs["rgb"].reshape(3, 3, *obs["rgb"].shape[1:])
        clean = clean_envs["dmc:cartpole-swingup"]
        clean_frame = clean.reset(seed=2)[0]["rgb"]
        for frame in frames:  # all three differ from a clean frame over most of the image
            assert (np.abs(frame.astype(int) - clean_frame).mean(axis=0) > 10).mean() > 0.5
        # render() shows the newest frame as the agent sees it, distractor included.
        np.testing.assert_array_equal(env.render(), frames[-1].transpose(1, 2, 0))
    finally:
        env.close()


def test_moving_background_is_seeded_and_moves() -> None:
    a = MovingBackground(48, 48, np.random.default_rng(0), hard=True)
    b = MovingBackground(48, 48, np.random.default_rng(0), hard=True)
    np.testing.assert_array_equal(a.frame(5), b.frame(5))
    assert a.frame(0).shape == (48, 48, 3) and a.frame(0).dtype == np.uint8
    assert np.abs(a.frame(0).astype(int) - a.frame(10)).mean() > 5
    assert a.frame(0).std() > 20  # colourful, not flat


def test_bad_mode_and_suites_without_mujoco() -> None:
    with pytest.raises(EnvSpecError, match="unknown distractor 'video'; valid: clean, color_easy"):
        make_env("dmc:cartpole-swingup", distractor="video")
    with pytest.raises(EnvSpecError, match="needs a MuJoCo suite"):
        make_env("fake:square", distractor="color_easy")
    env = make_env("fake:square", distractor="clean")  # clean: no distractor, any suite
    env.close()
