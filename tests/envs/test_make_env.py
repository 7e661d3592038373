"""make_env itself: spec parsing, presets, option checks, missing simulators."""

import sys

import pytest

from saliency_rl.envs import make_env, parse_spec, task_names
from saliency_rl.envs.presets import PRESETS
from saliency_rl.envs.wrappers import frame_channels
from saliency_rl.errors import EnvSpecError


def test_parse_spec():
    spec = parse_spec("dmc:cartpole-swingup")
    assert (spec.suite, spec.name, str(spec)) == ("dmc", "cartpole-swingup", "dmc:cartpole-swingup")
    with pytest.raises(EnvSpecError, match="SUITE:TASK"):
        parse_spec("cartpole")
    with pytest.raises(EnvSpecError, match="did you mean metaworld"):
        parse_spec("metaword:reach")
    with pytest.raises(EnvSpecError, match="names no task"):
        parse_spec("dmc:")


def test_dmc_100k_preset_sets_per_domain_action_repeat():
    env = make_env("dmc:cartpole-swingup", preset="dmc-100k")
    obs, _ = env.reset(seed=0)
    assert obs["rgb"].shape == (9, 84, 84)  # 3 frames of 84x84
    assert env.unwrapped.action_repeat == 8
    assert frame_channels(env) == 3
    walker = make_env("dmc:walker-walk", preset="dmc-100k", image_size=64)  # explicit wins
    assert walker.unwrapped.action_repeat == 2
    assert walker.observation_space["rgb"].shape == (9, 64, 64)
    assert {PRESETS["dmc-100k"].action_repeat[d] for d in ("finger", "ball_in_cup")} == {2, 4}


def test_preset_errors():
    with pytest.raises(EnvSpecError, match="for atari tasks"):
        make_env("dmc:cartpole-swingup", preset="atari")
    with pytest.raises(EnvSpecError, match="did you mean dmc-100k"):
        make_env("dmc:cartpole-swingup", preset="dmc-100")


@pytest.mark.parametrize(
    "option", [{"image_size": 8}, {"frame_stack": 0}, {"action_repeat": -1}, {"episode_length": 0}]
)
def test_option_values_are_checked(option):
    with pytest.raises(EnvSpecError, match=next(iter(option))):
        make_env("fake:square", **option)


def test_a_missing_simulator_names_the_extra(monkeypatch):
    import saliency_rl.envs

    # Forget any earlier import of the adapter, both the module and the package's attribute.
    monkeypatch.delitem(sys.modules, "saliency_rl.envs.atari", raising=False)
    monkeypatch.delattr(saliency_rl.envs, "atari", raising=False)
    monkeypatch.setitem(sys.modules, "ale_py", None)  # as if it were not installed
    with pytest.raises(
        EnvSpecError,
        match=r"needs ale_py, which is not installed: pip install 'saliency-rl\[atari\]'",
    ):
        task_names("atari")
