"""The state probe: known answers on synthetic features, no held-out leak, every encoder
kind through the CLI, and one clear line for what cannot be probed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from saliency_rl.cli import main
from saliency_rl.experiments.probe import fit_probes, split_episodes, stack_rows


def synthetic(episodes=8, steps=60, state_dim=3, seed=0):
    rng = np.random.default_rng(seed)
    state = rng.normal(size=(episodes * steps, state_dim))
    episode_of_row = np.repeat(np.arange(episodes), steps)
    return state, episode_of_row


def test_features_that_encode_the_state_linearly_give_r2_near_one():
    state, episodes = synthetic()
    mixing = np.random.default_rng(1).normal(size=(3, 40))
    features = state @ mixing + 0.01 * np.random.default_rng(2).normal(size=(len(state), 40))
    scores = fit_probes(features, state, ["a", "b", "c"], episodes, split_episodes(8))
    assert scores["ridge_mean"] > 0.99
    assert scores["mlp_mean"] > 0.9


def test_random_features_give_r2_near_zero():
    state, episodes = synthetic()
    features = np.random.default_rng(3).normal(size=(len(state), 40))
    scores = fit_probes(features, state, ["a", "b", "c"], episodes, split_episodes(8))
    assert scores["ridge_mean"] < 0.1 and scores["mlp_mean"] < 0.1


def test_held_out_episodes_never_leak_into_the_fit():
    # Each episode has its own constant target and a feature naming the episode: a probe that
    # saw the test episodes would score ~1; one that did not cannot beat the fit's mean.
    steps, count = 30, 9
    episodes = np.repeat(np.arange(count), steps)
    per_episode = np.random.default_rng(4).normal(size=(count, 1))
    target = per_episode[episodes] + 1e-3 * np.random.default_rng(5).normal(size=(len(episodes), 1))
    features = np.eye(count)[episodes]
    scores = fit_probes(features, target, ["t"], episodes, split_episodes(count))
    assert scores["ridge"]["t"] < 0.2 and scores["mlp"]["t"] < 0.2
    fit, val, test = split_episodes(count)
    assert not set(fit) & set(test) and not set(val) & set(test) and not set(fit) & set(val)
    assert sorted(fit + val + test) == list(range(count)) and test == [7, 8]


def test_stacks_repeat_the_first_frame_at_an_episode_start():
    values = np.arange(4)
    assert stack_rows(values, 3).tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 2], [1, 2, 3]]


@pytest.fixture(scope="module")
def square_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("probe") / "square"
    argv = ["collect", "--env", "fake:square", "--episodes", "12", "--episode-length", "40"]
    assert main([*argv, "--image-size", "32", "--out", str(out), "--no-progress"]) == 0
    return out


def test_pixels_probe_through_the_cli_finds_the_square(square_dataset, tmp_path, capsys):
    out = tmp_path / "probes"
    argv = ["probe", str(square_dataset), "--encoder", "pixels:8", "--encoder", "pixels"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "| **mean** |" in printed and "square.x" in printed
    report = json.loads((out / "pixels_8" / "probe.json").read_text())
    assert set(report["views"]) == {"newest", "stack"}
    assert report["quantities"] == ["proprio[0]", "proprio[1]", "square.x", "square.y"]
    assert report["views"]["newest"]["ridge"]["square.x"] > 0.5  # the square is in the pixels
    assert report["episodes"]["test"] == [9, 10, 11] and report["frames"] == 12 * 41
    assert (out / "pixels" / "probe.md").read_text().startswith("# Probe: pixels")
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0  # report shows it
    page = (tmp_path / "report" / "report.md").read_text()
    assert "State probes" in page and "| pixels:8 | fake:square | 492 |" in page


def test_multimae_encoders_in_their_modes_and_random_weights(
    fake_dataset_64, tiny_multimae_64, tmp_path, capsys
):
    both = tiny_multimae_64["rgb+saliency"]
    specs = [f"multimae:{tiny_multimae_64['rgb']}", f"multimae-random:{tiny_multimae_64['rgb']}"]
    specs += [f"multimae:{both}:rgb+saliency", f"multimae:{both}:rgb+saliency-pretrain-only"]
    argv = ["probe", str(fake_dataset_64.root), "--out", str(tmp_path), "--no-progress"]
    for spec in specs:
        argv += ["--encoder", spec]
    assert main(argv) == 0, capsys.readouterr().err
    reports = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/probe.json"))]
    assert len(reports) == 4
    modes = sorted(r["encoder"].rsplit("(", 1)[1] for r in reports)
    expected = ["rgb", "rgb", "rgb+saliency", "rgb+saliency-pretrain-only"]
    assert modes == sorted(f"{mode}, mean)" for mode in expected)  # ViSaRL's readout
    for report in reports:
        views = report["views"]
        assert views["stack"]["feature_dim"] == 3 * views["newest"]["feature_dim"]


def test_multimae_readouts_keep_where_things_are(fake_dataset_64, tiny_multimae_64, tmp_path):
    run = tiny_multimae_64["rgb+saliency"]
    argv = ["probe", str(fake_dataset_64.root), "--out", str(tmp_path), "--no-progress"]
    for readout in ("mean", "global", "grid2"):
        argv += ["--encoder", f"multimae:{run}:rgb+saliency@{readout}"]
    assert main(argv) == 0
    dims = {}
    for path in tmp_path.glob("*/probe.json"):
        report = json.loads(path.read_text())
        readout = report["encoder"].rsplit(", ", 1)[1].rstrip(")")
        dims[readout] = report["views"]["newest"]["feature_dim"]
    # grid2: each modality's (rgb, saliency) patch tokens pooled over 2 x 2 cells
    assert dims["grid2"] == 2 * 4 * dims["mean"] and dims["global"] == dims["mean"]
    assert main(["probe", str(fake_dataset_64.root), "--encoder", f"multimae:{run}@grid"]) == 2


def test_a_sac_runs_cnn_and_its_random_twin(square_dataset, tmp_path, capsys):
    run = tmp_path / "sac"
    argv = ["train", "sac", "--env", "fake:square", "--total-steps", "12", "--init-steps", "4"]
    argv += ["--batch-size", "4", "--hidden-dim", "16", "--feature-dim", "8", "--conv-layers", "2"]
    argv += ["--episode-length", "10", "--image-size", "32", "--frame-stack", "2"]
    argv += ["--eval-every", "0", "--eval-episodes", "1", "--no-progress", "--device", "cpu"]
    assert main([*argv, "--out", str(run)]) == 0, capsys.readouterr().err
    out = tmp_path / "probes"
    argv = [
        "probe",
        str(square_dataset),
        "--encoder",
        f"sac:{run}",
        "--encoder",
        f"sac-random:{run}",
    ]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0, capsys.readouterr().err
    reports = [json.loads(p.read_text()) for p in sorted(out.glob("*/probe.json"))]
    assert [sorted(r["views"]) for r in reports] == [["stack"], ["stack"]]  # a CNN reads stacks
    assert {r["frame_stack"] for r in reports} == {2}  # the run's own stack


def test_the_attention_module_and_its_random_twin(square_dataset, tmp_path, capsys):
    module = tmp_path / "attention"
    argv = ["pretrain-attention", str(square_dataset), "--steps", "2", "--batch-size", "4"]
    assert main([*argv, "--out", str(module), "--no-progress", "--device", "cpu"]) == 0
    out = tmp_path / "probes"
    argv = ["probe", str(square_dataset), "--encoder", f"attention:{module}"]
    argv += ["--encoder", f"attention-random:{module}@4", "--out", str(out), "--no-progress"]
    assert main(argv) == 0, capsys.readouterr().err
    reports = {
        r["encoder"]: r for r in map(json.loads, map(Path.read_text, out.glob("*/probe.json")))
    }
    trained = reports[f"attention:{module} (masked features, 8x8)"]
    random = reports[f"attention-random:{module}@4 (masked features, 4x4)"]
    assert trained["views"]["newest"]["feature_dim"] == 32 * 8 * 8  # 32 channels, 8 x 8 cells
    assert random["views"]["newest"]["feature_dim"] == 32 * 4 * 4
    assert trained["views"]["stack"]["feature_dim"] == 3 * 32 * 8 * 8
    # a module of another image size: one line, before any encoding
    other = tmp_path / "other"
    data64 = tmp_path / "square64"
    argv = ["collect", "--env", "fake:square", "--episodes", "3", "--episode-length", "6"]
    assert main([*argv, "--image-size", "64", "--out", str(data64), "--no-progress"]) == 0
    argv = ["pretrain-attention", str(data64), "--steps", "1", "--batch-size", "2"]
    assert main([*argv, "--out", str(other), "--no-progress", "--device", "cpu"]) == 0
    capsys.readouterr()
    argv = ["probe", str(square_dataset), "--encoder", f"attention:{other}", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "p")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "64x64" in error[0] and "32x32" in error[0], error
    assert main(["probe", str(square_dataset), "--encoder", f"attention:{module}@x"]) == 2


def test_what_cannot_be_probed_is_one_clear_line(fake_dataset, tiny_multimae_64, tmp_path, capsys):
    few = ["probe", str(fake_dataset.root), "--encoder", "pixels", "--out", str(tmp_path)]
    assert main(few) == 0  # 3 episodes: just enough
    capsys.readouterr()
    wrong = ["probe", str(fake_dataset.root), "--encoder", f"multimae:{tiny_multimae_64['rgb']}"]
    assert main([*wrong, "--out", str(tmp_path), "--no-progress"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "32x32" in error[0] and "64x64" in error[0]
    assert main(["probe", str(fake_dataset.root), "--encoder", "vit:x"]) == 2
    assert "valid: pixels" in capsys.readouterr().err


def test_a_dataset_without_state_is_refused(tmp_path, capsys):
    pytest.importorskip("ale_py")
    data = tmp_path / "pong"
    assert main(["collect", "--env", "atari:Pong", "--frames", "20", "--out", str(data)]) == 0
    capsys.readouterr()
    assert main(["probe", str(data), "--encoder", "pixels:12", "--out", str(tmp_path / "p")]) == 2
    error = capsys.readouterr().err
    assert "no proprio and no salient_points" in error and len(error.strip().splitlines()) == 1
