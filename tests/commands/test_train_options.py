"""``saliency-rl train sac|bc|a2c|acktr``: what the options set reaches the trainer's config,
and what they leave out takes the preset's value (the trainers are replaced by fakes)."""

from __future__ import annotations

import json

import pytest

from saliency_rl.cli import main


@pytest.fixture
def trained(monkeypatch, tmp_path):
    """The config each fake trainer was given, by algorithm."""
    import saliency_rl.algos.a2c_trainer as a2c_trainer
    import saliency_rl.algos.bc_trainer as bc_trainer
    import saliency_rl.algos.sac_trainer as sac_trainer

    configs = {}

    def fake(algorithm, config_at):
        def train(*args, **kwargs):
            configs[algorithm] = args[config_at]
            (tmp_path / "eval.json").write_text(json.dumps({"final": None}))
            return tmp_path

        return train

    monkeypatch.setattr(sac_trainer, "train_sac", fake("sac", 1))
    monkeypatch.setattr(bc_trainer, "train_bc", fake("bc", 2))
    monkeypatch.setattr(a2c_trainer, "train_a2c", fake("a2c", 1))
    return configs


def test_sac_options_set_their_fields_and_the_rest_is_the_presets(trained):
    argv = ["train", "sac", "--env", "dmc:cartpole-swingup", "--preset", "drq", "--actor-lr"]
    argv += ["0.005", "--no-target-encoder", "--aux", "rad", "--nstep", "3", "--no-progress"]
    assert main(argv) == 0
    from saliency_rl.algos.sac import SAC_PRESETS

    config = trained["sac"]
    assert (config.actor_lr, config.target_encoder, config.aux, config.nstep) == (
        0.005, False, "rad", 3,
    )  # fmt: skip
    assert config.batch_size == SAC_PRESETS["drq"].batch_size == 512
    assert config.saliency_mode == "rgb"


def test_bc_options_set_their_fields(trained):
    argv = ["train", "bc", "--dataset", "d", "--encoder", "e", "--lr", "0.01", "--mlp-hidden"]
    argv += ["8,8", "--no-proprio", "--execution", "first", "--no-progress"]
    assert main(argv) == 0
    config = trained["bc"]
    assert (config.learning_rate, config.mlp_hidden, config.use_proprio) == (0.01, (8, 8), False)
    assert config.execution == "first" and config.steps == 5000  # visarl-bc's


@pytest.mark.parametrize("algorithm", ["a2c", "acktr"])
def test_a2c_and_acktr_options_set_their_fields(trained, algorithm):
    argv = ["train", algorithm, "--env", "atari:Pong", "--lr", "0.002", "--eval-deterministic"]
    argv += ["--attention", "joint", "--vector", "our", "--no-progress"]
    argv += ["--kfac-damping", "0.05"] if algorithm == "acktr" else []
    assert main(argv) == 0
    config = trained["a2c"]
    assert (config.algo, config.learning_rate, config.eval_deterministic) == (
        algorithm,
        0.002,
        True,
    )
    assert (config.attention, config.vector) == ("joint", "our")
    assert config.num_envs == (32 if algorithm == "acktr" else 16)  # the preset's
    if algorithm == "acktr":
        assert config.kfac_damping == 0.05
