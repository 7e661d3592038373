"""``saliency-rl train bc`` end to end on Meta-World at tiny budgets: expert demonstrations,
saliency labels, a tiny MultiMAE, training, closed-loop rollouts (clean and with a
distractor), resume, and one-line errors."""

import json

import numpy as np
import pytest

from saliency_rl.algos.bc_data import resolve_saliency
from saliency_rl.algos.bc_policy import load_policy
from saliency_rl.cli import main
from saliency_rl.data.dataset import Dataset, FieldSpec

pytest.importorskip("metaworld")


@pytest.fixture(scope="module")
def reach_demos(tmp_path_factory):
    """One 10-step scripted-expert episode of metaworld:reach at 64x64, via the CLI."""
    out = tmp_path_factory.mktemp("bc_reach") / "demos"
    argv = ["collect", "--env", "metaworld:reach", "--out", str(out), "--episodes", "1"]
    assert main([*argv, "--policy", "expert", "--episode-length", "10", "--no-progress"]) == 0
    return out


def one_line_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.slow
def test_train_bc_end_to_end_on_metaworld(
    reach_demos, tiny_predictor_64, tiny_multimae_64, tmp_path, capsys
):
    assert main(["label", str(reach_demos), "--predictor", str(tiny_predictor_64),
                 "--device", "cpu", "--no-progress"]) == 0  # fmt: skip
    out = tmp_path / "run"
    argv = ["train", "bc", "--dataset", str(reach_demos), "--encoder",
            str(tiny_multimae_64["rgb+saliency"]), "--mode", "rgb+saliency", "--preset", "tiny",
            "--steps", "6", "--chunk", "3", "--history", "4", "--eval-episodes", "2",
            "--eval-distractor", "color_easy", "--out", str(out), "--device", "cpu",
            "--threads", "1", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"run {out}: success rate" in printed and "color_easy" in printed
    config = json.loads((out / "config.json").read_text())
    assert config["algo"] == "bc" and config["env"] == "metaworld:reach"
    assert config["method"] == "bc-multimae-rgb+saliency"
    assert config["env_options"]["episode_length"] == 10
    assert config["config"]["chunk"] == 3 and config["saliency_source"] == "dataset"
    assert config["predictor"] == str(tiny_predictor_64.resolve())
    result = json.loads((out / "eval.json").read_text())
    final = result["final"]
    assert final["episodes"] == 2 and 0.0 <= final["success_rate"] <= 1.0
    assert final["seed"] == 100_000  # evaluation seeds are far from the demos' (0)
    assert result["distractors"]["color_easy"]["episodes"] == 2
    assert final["lengths"] == [10, 10] and len(final["successes"]) == 2
    assert result["history"][-1] == final and result["algo"] == "bc"
    rows = (out / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert {"step", "loss", "val_loss", "eval_success_rate"} <= set(header)
    assert rows[-1].split(",")[0] == "6" and rows[-1].split(",")[-1] != ""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tb"))
    events.Reload()  # the same rows as TensorBoard scalars
    assert {"loss", "grad_norm", "eval_success_rate"} <= set(events.Tags()["scalars"])
    assert events.Scalars("loss")[-1].step == 6
    # The features were cached once, in the dataset, for this encoder and mode.
    dataset = Dataset.open(reach_demos)
    assert dataset.has_field(config["feature_field"])
    # The trained policy acts in the env and reports the saliency map it used.
    from saliency_rl.envs import make_env

    policy = load_policy(out, "cpu")
    env = make_env("metaworld:reach", seed=5, episode_length=10)
    obs, _ = env.reset(seed=5)
    action = policy.act(obs)
    assert action.shape == (4,) and np.all(np.abs(action) <= 1)
    saliency = policy.saliency(obs)
    assert saliency.shape == (64, 64) and 0 <= saliency.min() <= saliency.max() <= 1
    env.close()
    # --resume on a finished run trains nothing more and reports again.
    assert main(["train", "bc", "--resume", "--out", str(out), "--no-progress",
                 "--device", "cpu"]) == 0  # fmt: skip
    assert "success rate" in capsys.readouterr().out


def test_errors_are_one_line(reach_demos, tiny_multimae_64, tiny_predictor_64, tmp_path, capsys):
    encoder = str(tiny_multimae_64["rgb+saliency"])
    # rgb+saliency without any predictor: the dataset here was never labelled.
    unlabelled = tmp_path / "copy"
    assert main(["collect", "--env", "metaworld:reach", "--out", str(unlabelled), "--episodes",
                 "1", "--policy", "expert", "--episode-length", "2", "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    base = ["train", "bc", "--preset", "tiny", "--device", "cpu", "--no-progress"]
    assert main([*base, "--dataset", str(unlabelled), "--encoder", encoder,
                 "--mode", "rgb+saliency", "--out", str(tmp_path / "a")]) == 2  # fmt: skip
    assert "needs a saliency predictor" in one_line_error(capsys)
    # A predictor that did not label the dataset computes the maps itself, in training too.
    found = resolve_saliency(Dataset.open(unlabelled), tiny_predictor_64)
    assert found == (str(tiny_predictor_64.resolve()), "predictor")
    # A dataset without actions.
    frames = Dataset.create(tmp_path / "frames", env_spec="fake:square", env_options={},
                            fields={"rgb": FieldSpec("uint8", (3, 64, 64))})  # fmt: skip
    frames.append_episode({"rgb": np.zeros((3, 3, 64, 64), np.uint8)})
    assert main([*base, "--dataset", str(frames.root), "--encoder", encoder,
                 "--out", str(tmp_path / "b")]) == 2  # fmt: skip
    assert "has no actions" in one_line_error(capsys)
    # An RGB-only encoder asked for saliency; no dataset or encoder at all.
    assert main([*base, "--dataset", str(unlabelled), "--encoder", str(tiny_multimae_64["rgb"]),
                 "--mode", "rgb+saliency", "--out", str(tmp_path / "c")]) == 2  # fmt: skip
    assert "pretrained on rgb and saliency" in one_line_error(capsys)
    assert main([*base]) == 2
    assert "needs --dataset and --encoder" in one_line_error(capsys)
    assert main([*base, "--resume"]) == 2
    assert "--resume needs the run" in one_line_error(capsys)
