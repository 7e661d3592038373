"""Evaluation: episodes with a Policy, run directories dispatched to their trainer, videos."""

from __future__ import annotations

import json
import sys
import types

import imageio.v2 as imageio
import numpy as np
import pytest

from saliency_rl.envs import make_env
from saliency_rl.errors import EnvSpecError
from saliency_rl.evaluation import (
    POLICY_LOADERS,
    Policy,
    evaluate_run,
    load_run_policy,
    run_episodes,
    run_episodes_side_by_side,
    summarize,
)
from saliency_rl.runs import RunError, write_json


class CentreSeeker:
    """A small real policy: pushes towards the brightest pixel's mirror; map = brightness."""

    def __init__(self, action_size: int = 2) -> None:
        self.action_size = action_size
        self.resets = 0
        self.deterministic_flags: list[bool] = []

    def reset(self) -> None:
        self.resets += 1

    def act(self, obs: dict, deterministic: bool = True) -> np.ndarray:
        self.deterministic_flags.append(deterministic)
        frame = obs["rgb"][-3:].astype(np.float32).mean(axis=0)
        y, x = np.unravel_index(frame.argmax(), frame.shape)
        h, w = frame.shape
        size = self.action_size
        action = np.array([(w / 2 - x) / w, (h / 2 - y) / h] + [0.0] * (size - 2))
        return np.clip(action[:size], -1, 1).astype(np.float32)

    def saliency(self, obs: dict) -> np.ndarray:
        frame = obs["rgb"][-3:].astype(np.float32).mean(axis=0)
        return frame / max(float(frame.max()), 1.0)


@pytest.fixture
def fake_algo(monkeypatch):
    """A trainer module ``saliency_rl.algos.probe_trainer`` with ``load_policy``, in the
    registry as algorithm ``probe``."""
    module = types.ModuleType("saliency_rl.algos.probe_trainer")
    loaded = []

    def load_policy(run_dir, device="cpu"):
        config = json.loads((run_dir / "config.json").read_text())
        env = make_env(config["env"])
        policy = CentreSeeker(env.action_space.shape[0])
        env.close()
        loaded.append((run_dir, device, policy))
        return policy

    module.load_policy = load_policy
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(POLICY_LOADERS, "probe", module.__name__)
    return loaded


def make_run(path, env, env_options, algo="probe", finished=True):
    path.mkdir(parents=True)
    write_json(
        path / "config.json",
        {"algo": algo, "env": env, "env_options": env_options, "seed": 0, "method": "probe"},
    )
    if finished:
        write_json(path / "eval.json", {"final": None, "history": []})
    return path


def test_policy_protocol_and_resets_per_episode():
    env = make_env("fake:square", image_size=16, episode_length=4, seed=0)
    policy = CentreSeeker()
    assert isinstance(policy, Policy)
    seen = []
    results, fps = run_episodes(
        env, policy, 3, seed=5, deterministic=False, observe=lambda i, obs: seen.append(i)
    )
    assert policy.resets == 3 and set(policy.deterministic_flags) == {False}
    assert [r.length for r in results] == [4, 4, 4] and fps > 0
    assert seen == [0] * 5 + [1] * 5 + [2] * 5  # the first observation and one per step
    # A bound act method: its object's reset is called too; a plain callable still works.
    policy = CentreSeeker()
    again, _ = run_episodes(env, policy.act, 3, seed=5)
    assert policy.resets == 3
    assert [r.episode_return for r in again] == [r.episode_return for r in results]
    zero, _ = run_episodes(env, lambda obs: np.zeros(2, np.float32), 1)
    assert summarize(zero)["episodes"] == 1


def test_side_by_side_plays_the_same_episodes_in_order():
    policy = CentreSeeker()
    alone, _ = run_episodes(make_env("fake:square", image_size=16, episode_length=3), policy, 5, 7)
    starts = []
    envs = [make_env("fake:square", image_size=16, episode_length=3, seed=0) for _ in range(3)]
    together, _ = run_episodes_side_by_side(
        envs,
        lambda slots, obs: [policy.act(o) for o in obs],
        5,
        7,
        reset=starts.append,
    )
    assert together == alone  # episode i reset with seed 7 + i, whichever env played it
    assert starts == [0, 1, 2, 0, 1]  # two envs took a second episode when they were free


def test_evaluate_run_writes_json_and_video(fake_algo, tmp_path):
    run = make_run(
        tmp_path / "run", "dmc:cartpole-swingup", {"episode_length": 4, "frame_stack": 2}
    )
    result = evaluate_run(run, episodes=2, distractor="video_hard", video=1, device="cpu")
    assert fake_algo[0][1] == "cpu" and fake_algo[0][2].resets == 2
    saved = json.loads((run / "eval_video_hard.json").read_text())
    assert saved == result
    assert saved["episodes"] == 2 and saved["distractor"] == "video_hard"
    assert "not comparable with published DMC-GB" in saved["distractor_set"]
    assert saved["algo"] == "probe" and np.isfinite(saved["return_mean"])
    assert [e["length"] for e in saved["per_episode"]] == [4, 4]
    assert saved["videos"] == ["videos/video_hard_episode0.mp4"]
    frames = imageio.mimread(run / saved["videos"][0])
    assert len(frames) == 5  # the first observation and 4 steps
    assert frames[0].shape == (256, 512, 3)  # frame | saliency overlay, 64 -> 256 pixels
    assert not [p for p in (run / "videos").iterdir() if p.name.startswith(".")]
    # The same seeds give the same episodes: distractors and start states repeat.
    again = evaluate_run(run, episodes=2, distractor="video_hard")
    assert again["per_episode"] == saved["per_episode"] and again["videos"] == []


def test_meta_world_success_rate_and_clean_file(fake_algo, tmp_path):
    run = make_run(tmp_path / "mw", "metaworld:reach", {"episode_length": 3})
    result = evaluate_run(run, episodes=1)
    assert "success_rate" in result and result["distractor"] == "clean"
    assert result["distractor_set"] is None
    assert (run / "eval_clean.json").is_file()


def test_runs_that_cannot_be_evaluated(fake_algo, tmp_path, monkeypatch):
    with pytest.raises(RunError, match="is not a run directory"):
        evaluate_run(tmp_path)
    unfinished = make_run(tmp_path / "unfinished", "fake:square", {}, finished=False)
    with pytest.raises(RunError, match=r"has not finished \(no eval.json\)"):
        evaluate_run(unfinished)
    # An algorithm outside the registry: one line naming those it can evaluate.
    unknown = make_run(tmp_path / "unknown", "fake:square", {}, algo="nope")
    with pytest.raises(RunError, match="'nope' run, which saliency-rl evaluate cannot load"):
        load_run_policy(unknown)
    with pytest.raises(RunError, match="evaluates runs of a2c, acktr, bc, probe, sac"):
        evaluate_run(unknown)
    fake = make_run(tmp_path / "fake", "fake:square", {"episode_length": 2})
    with pytest.raises(EnvSpecError, match="need a MuJoCo suite"):
        evaluate_run(fake, distractor="color_easy")
    with pytest.raises(EnvSpecError, match="valid: clean, color_easy"):
        evaluate_run(fake, distractor="colour")
    assert evaluate_run(fake, episodes=1)["episodes"] == 1  # clean works on any suite
