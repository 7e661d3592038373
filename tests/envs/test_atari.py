"""The Atari adapter: shapes, reward clipping, episodic life, FIRE and no-op resets, seeding."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ale_py")
pytest.importorskip("cv2")

from saliency_rl.envs import make_env, task_names  # noqa: E402
from saliency_rl.errors import EnvSpecError  # noqa: E402


def _rollout(env, actions):
    """Frames (T+1, C, H, W), rewards (T,), infos of a reset followed by ``actions``."""
    obs, info = env.reset()
    frames, rewards, infos = [obs["rgb"]], [], [info]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        frames.append(obs["rgb"])
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            break
    return np.stack(frames), np.array(rewards), infos


def test_task_names_are_camel_case_ale_games():
    names = task_names("atari")
    for game in ("MsPacman", "Pong", "Breakout", "Asteroids", "Assault", "Carnival"):
        assert game in names
    assert "JourneyEscape" in names and "Joust" not in names  # multi-player only
    assert len(names) == len(set(names)) >= 100


@pytest.mark.parametrize("game", ["MsPacman", "Pong", "Breakout"])
def test_default_observations_are_four_grey_84px_frames(game):
    env = make_env(f"atari:{game}", seed=0)
    obs, info = env.reset()
    assert set(obs) == {"rgb"}
    assert obs["rgb"].shape == (4, 84, 84) and obs["rgb"].dtype == np.uint8
    assert env.observation_space.contains(obs)
    assert info["salient_points"].shape == (0, 2) and env.unwrapped.salient_point_names == ()
    for _ in range(20):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        assert info["salient_points"].dtype == np.float32
    assert obs["rgb"].std() > 0


def test_image_size_colour_and_name_variants():
    obs, _ = make_env("atari:ms_pacman", image_size=64, seed=0).reset()
    assert obs["rgb"].shape == (4, 64, 64)
    env = make_env("atari:mspacman", grayscale=False, frame_stack=1, seed=0)
    obs, _ = env.reset()
    assert obs["rgb"].shape == (3, 84, 84) and env.observation_space.contains(obs)
    obs, _ = make_env("atari:MsPacman", grayscale=False, seed=0).reset()
    assert obs["rgb"].shape == (12, 84, 84)
    red, green = obs["rgb"][-3:].astype(int)[:2]
    assert np.abs(red - green).max() > 0  # real colour, not grey copied thrice


def test_rewards_clipped_for_training_and_raw_for_evaluation():
    actions = np.random.default_rng(0).integers(9, size=300)
    for preset, clipped in (("atari", True), (None, True), ("atari-eval", False)):
        env = make_env("atari:MsPacman", preset=preset, seed=1, episodic_life=False)
        _, rewards, infos = _rollout(env, actions)
        raw = np.array([info["raw_reward"] for info in infos[1:]])
        assert raw.max() >= 10  # pellets are worth 10 points
        np.testing.assert_array_equal(rewards, np.sign(raw) if clipped else raw)


def test_life_loss_ends_the_training_episode_but_not_the_game():
    env = make_env("atari:MsPacman", seed=0)
    actions = np.random.default_rng(0).integers(9, size=2000)
    _, _, infos = _rollout(env, actions)
    first, last = infos[0], infos[-1]
    assert last["lives"] == first["lives"] - 1 and not last["game_over"]
    _, info = env.reset()  # the next life, same game: the frame counter goes on
    assert info["lives"] == last["lives"]
    assert info["episode_frame_number"] > last["episode_frame_number"]


def test_fire_reset_and_full_games_without_episodic_life():
    # Breakout waits for FIRE: with it pressed at reset, a still paddle loses a ball fast.
    env = make_env("atari:Breakout", seed=0, frame_stack=1)
    _, _, infos = _rollout(env, [0] * 200)
    assert len(infos) < 200 and infos[-1]["lives"] == 4 and not infos[-1]["game_over"]
    # Without episodic life only game over ends the episode (FIRE relaunches each ball).
    env = make_env("atari:Breakout", seed=0, frame_stack=1, episodic_life=False)
    _, _, infos = _rollout(env, [1] * 1000)
    lives = [info["lives"] for info in infos]
    assert lives[0] == 5 and lives[-1] == 0 and infos[-1]["game_over"]
    assert not any(info["game_over"] for info in infos[:-1])


def test_noop_starts_differ_between_seeds():
    env = make_env("atari:Pong", frame_stack=1)
    starts = {env.reset(seed=seed)[1]["episode_frame_number"] for seed in range(8)}
    assert len(starts) > 1
    frames = {env.reset(seed=seed)[0]["rgb"].tobytes() for seed in range(8)}
    assert len(frames) > 1


@pytest.mark.parametrize("options", [{}, {"sticky_actions": 0.25, "grayscale": False}])
def test_same_seed_same_actions_same_frames_and_rewards(options):
    actions = np.random.default_rng(3).integers(9, size=150)
    first = _rollout(make_env("atari:MsPacman", seed=7, **options), actions)
    second = _rollout(make_env("atari:MsPacman", seed=7, **options), actions)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    env = make_env("atari:MsPacman", **options)  # the seed given to reset counts as well
    env.reset(seed=11)
    frames = _rollout(env, actions)[0]
    env.reset(seed=11)
    np.testing.assert_array_equal(frames, _rollout(env, actions)[0])


def test_episode_length_and_action_repeat():
    env = make_env("atari:Pong", seed=0, episode_length=10, action_repeat=2)
    obs, info = env.reset()
    start = info["episode_frame_number"]
    for step in range(10):
        obs, _, terminated, truncated, info = env.step(0)
        assert truncated == (step == 9) and not terminated
    assert info["game_over"] and info["episode_frame_number"] - start == 10 * 2 * 4


def test_unknown_game_suggests_a_close_match():
    with pytest.raises(EnvSpecError, match="MsPacman"):
        make_env("atari:MsPacmn")


@pytest.mark.parametrize(
    "options", [{"camera": 0}, {"noop_max": -1}, {"frame_skip": 0}, {"sticky_actions": 2.0}]
)
def test_invalid_options_raise(options):
    with pytest.raises(EnvSpecError):
        make_env("atari:Pong", **options)
