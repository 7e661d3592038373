"""``saliency-rl keypoints`` and ``pretrain-transporter`` end to end on tiny budgets: attention
checkpoints, A2C runs with attention and Transporters; any k for masks, K for Transporter;
RAM precision/recall; one clear line on bad input."""

from __future__ import annotations

import json

import pytest

from saliency_rl.cli import main

pytest.importorskip("ale_py")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 40-frame Berzerk dataset, an attention checkpoint and a K=3 Transporter on it."""
    root = tmp_path_factory.mktemp("keypoints")
    data = root / "Berzerk"
    quiet = ["--no-progress", "--device", "cpu"]
    assert main(["collect", "--env", "atari:Berzerk", "--frames", "40", "--out", str(data)]) == 0
    common = ["--steps", "2", "--batch-size", "4", *quiet]
    assert main(["pretrain-attention", str(data), "--out", str(root / "att"), *common]) == 0
    assert (
        main(
            ["pretrain-transporter", str(data), "--out", str(root / "tr"), "--keypoints", "3"]
            + common
        )
        == 0
    )
    return {"data": data, "attention": root / "att", "transporter": root / "tr"}


def _report(out):
    return json.loads((out / "keypoints.json").read_text())


def test_attention_keypoints_any_k_with_ram_precision_recall(trained, tmp_path, capsys):
    for k in (2, 5):
        out = tmp_path / f"k{k}"
        args = ["keypoints", str(trained["attention"]), "--k", str(k), "--frames", "6"]
        assert main(args + ["--overlays", "2", "--out", str(out)]) == 0
        printed = capsys.readouterr().out
        assert "precision" in printed and "recall" in printed
        report = _report(out)
        assert report["kind"] == "attention" and report["game"] == "Berzerk"  # from provenance
        assert len(report["frames"]) == 6
        assert all(len(f["keypoints"]) == k for f in report["frames"])
        assert all(f["names"][0] == "player" for f in report["frames"])
        metrics = report["metrics"]
        assert metrics["keypoints"] == 6 * k and 0 <= metrics["precision"] <= 1
        assert sorted(p.name for p in (out / "overlays").iterdir()) == ["00000.png", "00001.png"]
    # The same frames: the first two keypoints of k=5 are those of k=2.
    two, five = _report(tmp_path / "k2"), _report(tmp_path / "k5")
    for a, b in zip(two["frames"], five["frames"], strict=True):
        assert b["keypoints"][:2] == a["keypoints"]


def test_other_game_and_dataset_frames(trained, tmp_path, capsys):
    out = tmp_path / "pacman"
    args = ["keypoints", str(trained["attention"]), "--k", "3", "--env", "atari:MsPacman"]
    assert main(args + ["--frames", "4", "--out", str(out)]) == 0
    report = _report(out)
    assert report["game"] == "MsPacman" and report["frames"][0]["names"][1:] == [
        "sue",
        "inky",
        "pinky",
        "blinky",
    ]
    out = tmp_path / "dataset"
    args = ["keypoints", str(trained["attention"]), "--k", "3", "--dataset", str(trained["data"])]
    assert main(args + ["--frames", "5", "--out", str(out)]) == 0
    assert "no RAM ground truth" in capsys.readouterr().out
    report = _report(out)
    assert report["metrics"] is None and len(report["frames"]) == 5


def test_transporter_gives_its_k_and_refuses_another(trained, tmp_path, capsys):
    out = tmp_path / "tr"
    args = ["keypoints", str(trained["transporter"]), "--k", "3", "--frames", "4"]
    assert main(args + ["--out", str(out)]) == 0
    report = _report(out)
    assert report["kind"] == "transporter" and report["metrics"]["keypoints"] == 12
    capsys.readouterr()
    code = main(
        ["keypoints", str(trained["transporter"]), "--k", "4", "--out", str(tmp_path / "x")]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--k 3" in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_a2c_run_with_attention_gives_keypoints(tmp_path, capsys):
    run = tmp_path / "run"
    train = ["train", "a2c", "--env", "atari:MsPacman", "--attention", "joint", "--out", str(run)]
    train += ["--num-envs", "2", "--total-steps", "10", "--eval-episodes", "0", "--no-progress"]
    assert main(train) == 0
    out = tmp_path / "kp"
    assert main(["keypoints", str(run), "--k", "4", "--frames", "3", "--out", str(out)]) == 0
    report = _report(out)
    assert report["game"] == "MsPacman" and report["metrics"]["keypoints"] == 12


def test_bad_inputs_are_one_line(trained, tmp_path, capsys):
    cases = [
        (["keypoints", str(tmp_path), "--k", "3"], "neither a checkpoint nor a run"),
        (
            ["keypoints", str(trained["attention"]), "--k", "50"],
            "k must be an integer from 1 to 49",
        ),
        (
            ["keypoints", str(trained["attention"]), "--k", "3", "--env", "atari:Nope"],
            "Nope",
        ),
    ]
    for args, message in cases:
        code = main(args + ["--frames", "2", "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and message in err and len(err.splitlines()) == 1, err
