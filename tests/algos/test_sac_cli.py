"""``saliency-rl train sac`` end to end on the real simulators, every encoder mode, tiny budgets."""

import csv
import json

import pytest

from saliency_rl.cli import main

ENVS = ["dmc:cartpole-swingup", "metaworld:reach"]
# Tiny but real: ViSaRL's 11-layer CNN on 64x64 frames, 2 stacked; narrow heads, small batch.
TINY = ["--total-steps", "6", "--init-steps", "3", "--batch-size", "4", "--hidden-dim", "16"]
TINY += ["--feature-dim", "8", "--hidden-layers", "1", "--episode-length", "3"]
TINY += ["--frame-stack", "2", "--action-repeat", "2", "--eval-every", "0"]
TINY += ["--eval-episodes", "1", "--log-every", "3", "--checkpoint-every", "3"]
TINY += ["--no-progress", "--device", "cpu", "--threads", "1", "--env-preset", "none"]
MODES = [
    ("cnn", "rgb", "none"),
    ("cnn", "saliency", "none"),
    ("cnn", "rgb_x_saliency", "none"),
    ("cnn", "rgbs", "none"),
    ("cnn", "rgbs", "rad"),
    ("cnn", "rgb", "curl"),
    ("multimae", "rgb", "none"),
    ("multimae", "rgb+saliency-pretrain-only", "none"),
    ("multimae", "rgb+saliency", "none"),
    ("multimae", "rgb_x_saliency", "none"),
]


def checkpoints_for(encoder, mode, predictor, multimae):
    args = []
    if mode in ("saliency", "rgb_x_saliency", "rgbs", "rgb+saliency"):
        args += ["--predictor", str(predictor)]
    if encoder == "multimae":
        rgb_only = mode in ("rgb", "rgb_x_saliency")
        args += ["--encoder-checkpoint", str(multimae["rgb" if rgb_only else "rgb+saliency"])]
    return args


@pytest.mark.slow
@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("encoder,mode,aux", MODES)
def test_every_encoder_mode_trains(
    env, encoder, mode, aux, tiny_predictor_64, tiny_multimae_64, tmp_path, capsys
):
    out = tmp_path / "run"
    argv = ["train", "sac", "--env", env, "--encoder", encoder, "--saliency-mode", mode]
    argv += ["--aux", aux, *checkpoints_for(encoder, mode, tiny_predictor_64, tiny_multimae_64)]
    assert main([*argv, *TINY, "--out", str(out)]) == 0, capsys.readouterr().err
    config = json.loads((out / "config.json").read_text())
    algo = "sac" if aux == "none" else aux
    assert config["algo"] == "sac" and config["method"] == f"{algo}-{encoder}-{mode}"
    assert config["env"] == env and config["env_options"]["frame_stack"] == 2
    with (out / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    trained = [r for r in rows if r["critic_loss"]]
    assert trained and int(trained[-1]["updates"]) == 3  # steps 4..6 each update once
    assert rows[-1]["eval_return_mean"] != ""
    final = json.loads((out / "eval.json").read_text())["final"]
    assert final["episodes"] == 1 and "return_mean" in final
    if env.startswith("metaworld"):
        assert "success_rate" in final and rows[-1]["eval_success_rate"] != ""
    assert any((out / "tb").iterdir())  # TensorBoard events
    from saliency_rl.algos.sac_trainer import load_policy
    from saliency_rl.envs import make_env

    policy = load_policy(out)
    env = make_env(env, **config["env_options"])
    obs, _ = env.reset(seed=0)
    assert policy.act(obs).shape == env.action_space.shape
    sal = policy.saliency(obs)
    assert (sal is None) == (mode not in ("saliency", "rgb_x_saliency", "rgbs", "rgb+saliency"))


@pytest.mark.slow
def test_resume_from_the_cli(tiny_predictor_64, tmp_path, capsys):
    argv = ["train", "sac", "--env", "dmc:cartpole-swingup", "--saliency-mode", "rgbs"]
    argv += ["--predictor", str(tiny_predictor_64), *TINY]
    argv[argv.index("--eval-every") + 1] = "3"  # the half run's end is on the schedule
    whole, half = tmp_path / "whole", tmp_path / "half"
    assert main([*argv, "--out", str(whole)]) == 0
    half_args = [*argv, "--out", str(half)]
    half_args[half_args.index("--total-steps") + 1] = "3"
    assert main(half_args) == 0
    assert main([*argv, "--out", str(half), "--resume"]) == 0, capsys.readouterr().err

    def rows(run):
        with (run / "metrics.csv").open() as handle:
            return [
                {k: v for k, v in r.items() if k not in ("time", "fps")}
                for r in csv.DictReader(handle)
            ]

    assert rows(whole) == rows(half)


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--saliency-mode", "rgbs"], "needs saliency maps: give the trained predictor"),
        (["--encoder", "multimae"], "needs the pretrained MultiMAE: pass --encoder-checkpoint"),
        (["--encoder", "multimae", "--aux", "curl"], "needs --encoder cnn"),
        (["--saliency-mode", "rgb+saliency"], "not one of the cnn encoder's"),
        (["--wandb"], "needs the wandb package"),
        (["--preset", "rad-curl-100k", "--env-preset", "atari"], "is for atari tasks"),
    ],
)
def test_bad_settings_are_one_line_errors(extra, message, tmp_path, capsys):
    pytest.importorskip("dm_control")
    if "--wandb" in extra:
        try:
            import wandb  # noqa: F401

            pytest.skip("wandb is installed here")
        except ImportError:
            pass
    argv = ["train", "sac", "--env", "dmc:cartpole-swingup", *extra, "--out", str(tmp_path / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_multimae_mode_must_match_its_pretraining(tiny_multimae_64, tmp_path, capsys):
    argv = ["train", "sac", "--env", "dmc:cartpole-swingup", "--encoder", "multimae"]
    argv += [
        "--saliency-mode",
        "rgb",
        "--encoder-checkpoint",
        str(tiny_multimae_64["rgb+saliency"]),
    ]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 2
    assert "RGB-only pretraining" in capsys.readouterr().err


def test_presets_pick_env_presets():
    from saliency_rl.algos.sac_trainer import env_options_for

    assert env_options_for("dmc:cartpole-swingup", "rad-curl-100k", {}) == {"preset": "dmc-100k"}
    assert env_options_for("dmc:cartpole-swingup", "visarl", {}) == {"preset": "visarl-dmc"}
    assert env_options_for("metaworld:reach", "visarl", {}) == {"preset": "visarl-metaworld"}
    assert env_options_for("metaworld:reach", "visarl", {"preset": None}) == {}
    assert env_options_for("fake:square", "visarl", {"image_size": 32}) == {"image_size": 32}
