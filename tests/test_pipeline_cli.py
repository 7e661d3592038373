"""The human-saliency chain through the CLI, tiny budgets: collect -> oracle clicks ->
train-saliency -> label -> pretrain MultiMAE -> frozen-encoder features (rollout and cache)."""

import json

import numpy as np

from saliency_rl.cli import main
from saliency_rl.data import Dataset


def test_pretrain_then_frozen_encoder_rollout_on_a_labelled_dataset(tmp_path, capsys):
    ds, pred, mm = (str(tmp_path / name) for name in ("ds", "pred", "mm"))
    quiet = ["--no-progress"]
    assert (
        main(
            [
                "collect",
                "--env",
                "dmc:cartpole-swingup",
                "--out",
                ds,
                "--frames",
                "60",
                "--action-repeat",
                "8",
                *quiet,
            ]
        )
        == 0
    )
    assert main(["annotate", ds, "--oracle", "--frames", "8"]) == 0
    assert (
        main(["train-saliency", ds, "--out", pred, "--steps", "5", "--size", "tiny", *quiet]) == 0
    )
    assert main(["label", ds, "--predictor", pred, *quiet]) == 0
    assert Dataset.open(ds).has_field("saliency")
    assert (
        main(
            [
                "pretrain",
                ds,
                "--modalities",
                "rgb,saliency",
                "--steps",
                "2",
                "--batch-size",
                "4",
                "--model",
                "tiny",
                "--out",
                mm,
                *quiet,
            ]
        )
        == 0
    )
    capsys.readouterr()

    # A rollout on the features, saliency predicted on the fly from each frame.
    assert (
        main(
            [
                "features",
                "--encoder",
                mm,
                "--env",
                "dmc:cartpole-swingup",
                "--predictor",
                pred,
                "--episodes",
                "1",
                "--episode-length",
                "5",
                "--frame-stack",
                "2",
                *quiet,
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["mode"] == "rgb+saliency" and summary["length_mean"] == 5
    assert summary["feature_dim"] == 2 * 32  # two stacked frames of the tiny model's width

    # The same encoder over the labelled dataset, once, stored beside the frames.
    assert (
        main(["features", "--encoder", mm, "--dataset", ds, "--name", "features_mm", *quiet]) == 0
    )
    features = Dataset.open(ds).episode(0, ["features_mm"])["features_mm"]
    assert features.shape[1:] == (32,) and np.isfinite(features).all()
