"""Distractor objects: copies of the task's object on the table, seeded, clear of the task's
bodies at reset, visible in the frames, and invisible to the physics and the expert."""

from __future__ import annotations

import numpy as np
import pytest

from saliency_rl.envs import make_env
from saliency_rl.envs.distractor_objects import CLEARANCE, OBJECT_COUNT
from saliency_rl.errors import EnvSpecError


@pytest.mark.parametrize("task", ["metaworld:drawer-open", "metaworld:reach"])
def test_copies_change_the_frames_and_nothing_else(task) -> None:
    clean = make_env(task, seed=0, episode_length=40, action_repeat=2)
    env = make_env(task, seed=0, episode_length=40, action_repeat=2, distractor="objects")
    try:
        obs, info = env.reset(seed=4)
        clean_obs, clean_info = clean.reset(seed=4)
        np.testing.assert_array_equal(obs["proprio"], clean_obs["proprio"])
        np.testing.assert_allclose(info["salient_points"], clean_info["salient_points"])
        changed = (obs["rgb"] != clean_obs["rgb"]).any(axis=0)
        assert 10 < changed.sum() < 0.5 * changed.size  # the copies show, the scene stays
        returns, clean_returns = 0.0, 0.0
        for _ in range(40):  # the scripted expert does exactly what it does without them
            action = env.unwrapped.expert_action()
            np.testing.assert_allclose(action, clean.unwrapped.expert_action(), atol=1e-6)
            obs, reward, _, _, info = env.step(action)
            clean_obs, clean_reward, _, _, clean_info = clean.step(action)
            returns, clean_returns = returns + reward, clean_returns + clean_reward
        assert info["success"] == clean_info["success"]
        assert returns == pytest.approx(clean_returns, rel=1e-6)
    finally:
        env.close()
        clean.close()


def test_copies_are_seeded_and_clear_of_the_task_bodies(distractor_wrapper) -> None:
    env = make_env("metaworld:drawer-open", seed=0, distractor="objects")
    try:
        wrapper = distractor_wrapper(env)
        layouts = []
        for seed in (1, 2, 1):
            _, info = env.reset(seed=seed)
            positions = wrapper.object_positions
            assert positions.shape == (OBJECT_COUNT, 3)
            unwrapped = env.unwrapped
            task = [unwrapped.data.geom("rail").xpos, unwrapped.mw_env._target_pos,
                    unwrapped._state[4:7]]  # fmt: skip
            for p in positions:
                for t in task:
                    assert np.linalg.norm(p[:2] - t[:2]) >= CLEARANCE - 1e-9
            gaps = [np.linalg.norm(a[:2] - b[:2]) for i, a in enumerate(positions)
                    for b in positions[i + 1:]]  # fmt: skip
            assert min(gaps) >= CLEARANCE - 1e-9
            # The model's bodies are where the draw says.
            bodies = wrapper._objects.bodies
            np.testing.assert_allclose(unwrapped.data.xpos[bodies], positions)
            layouts.append(positions)
        np.testing.assert_array_equal(layouts[0], layouts[2])
        assert not np.allclose(layouts[0], layouts[1])
    finally:
        env.close()


def test_objects_need_metaworld_and_take_no_path() -> None:
    with pytest.raises(EnvSpecError, match="needs a metaworld task, not dmc"):
        make_env("dmc:walker-walk", distractor="objects")
    with pytest.raises(EnvSpecError, match="takes no path"):
        make_env("metaworld:reach", distractor="objects:/tmp")
