"""``saliency-rl evaluate`` end to end: a real tiny SAC run, clean and under distractors."""

from __future__ import annotations

import json

import imageio.v2 as imageio
import pytest

from saliency_rl.cli import main

# A real SAC run at a tiny budget (as tests/algos/test_sac_cli.py trains them).
TINY = ["--total-steps", "4", "--init-steps", "2", "--batch-size", "4", "--hidden-dim", "16"]
TINY += ["--feature-dim", "8", "--hidden-layers", "1", "--episode-length", "3"]
TINY += ["--frame-stack", "2", "--action-repeat", "2", "--eval-every", "0"]
TINY += ["--eval-episodes", "1", "--log-every", "2", "--checkpoint-every", "2"]
TINY += ["--no-progress", "--device", "cpu", "--threads", "1", "--env-preset", "none"]


@pytest.fixture(scope="module")
def sac_run(tiny_predictor_64, tmp_path_factory):
    """A finished tiny SAC run with the rgbs CNN (its policy returns saliency maps)."""
    out = tmp_path_factory.mktemp("sac") / "run"
    argv = ["train", "sac", "--env", "dmc:cartpole-swingup", "--saliency-mode", "rgbs"]
    argv += ["--predictor", str(tiny_predictor_64), *TINY, "--out", str(out)]
    assert main(argv) == 0
    return out


@pytest.mark.slow
def test_evaluate_a_sac_run_clean_and_distracted(sac_run, capsys):
    argv = ["evaluate", str(sac_run), "--episodes", "2", "--distractor", "clean", "color_hard"]
    argv += ["video_easy", "--video", "--no-progress", "--threads", "1"]
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in printed] == ["clean", "color_hard", "video_easy"]
    results = {
        mode: json.loads((sac_run / f"eval_{mode}.json").read_text())
        for mode in ("clean", "color_hard", "video_easy")
    }
    for mode, result in results.items():
        assert result["algo"] == "sac" and result["method"] == "sac-cnn-rgbs"
        assert result["episodes"] == 2 and [e["length"] for e in result["per_episode"]] == [3, 3]
        video = sac_run / result["videos"][0]
        assert video.name == f"{mode}_episode0.mp4"
        frames = imageio.mimread(video)
        # 4 observations; the frame beside its saliency overlay, 64 -> 256 pixels.
        assert len(frames) == 4 and frames[0].shape == (256, 512, 3)
    # The same physics start states in every mode: only the pixels differ.
    clean, video = results["clean"], results["video_easy"]
    assert clean["seed"] == video["seed"] == 100_000
    # "all": every mode, once each.
    argv = ["evaluate", str(sac_run), "--episodes", "1", "--distractor", "all", "clean"]
    assert main([*argv, "--no-progress", "--episode-length", "1"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in printed] == [
        "clean", "color_easy", "color_hard", "video_easy", "video_hard"
    ]  # fmt: skip
    assert json.loads((sac_run / "eval_video_hard.json").read_text())["episodes"] == 1


@pytest.mark.slow
def test_evaluate_errors_are_one_line(sac_run, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not a run directory" in err
    with pytest.raises(SystemExit):  # argparse: an unknown mode, listing the valid ones
        main(["evaluate", str(sac_run), "--distractor", "video"])
    assert "unknown distractor 'video'; valid: clean, color_easy" in capsys.readouterr().err
    # DMC-GB's data from a folder that is not there: one line, nothing written.
    missing = tmp_path / "no_dmcgb"
    assert main(["evaluate", str(sac_run), "--distractor", f"video_hard:{missing}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not exist" in err
    assert not list(sac_run.glob("eval_video_hard@*"))
    (sac_run / "eval.json").rename(sac_run / "eval.json.bak")
    try:
        assert main(["evaluate", str(sac_run), "--no-progress"]) == 2
        assert "has not finished" in capsys.readouterr().err
    finally:
        (sac_run / "eval.json.bak").rename(sac_run / "eval.json")


@pytest.mark.slow
def test_evaluate_an_a2c_run_clean_only(tmp_path, capsys):
    pytest.importorskip("ale_py")
    run = tmp_path / "a2c"
    train = ["train", "a2c", "--env", "atari:Pong", "--attention", "joint", "--out", str(run)]
    train += ["--num-envs", "2", "--total-steps", "10", "--log-every", "10"]
    train += ["--eval-episodes", "1", "--eval-max-steps", "5", "--no-progress"]
    assert main(train) == 0
    argv = ["evaluate", str(run), "--episodes", "1", "--episode-length", "6", "--video"]
    assert main([*argv, "--no-progress"]) == 0, capsys.readouterr().err
    result = json.loads((run / "eval_clean.json").read_text())
    assert result["algo"] == "a2c" and result["env_options"]["preset"] == "atari-eval"
    assert result["per_episode"][0]["length"] == 6
    frames = imageio.mimread(run / result["videos"][0])
    assert len(frames) == 7 and frames[0].shape == (252, 504, 3)  # grey 84 -> 252, + mask
    # Distractors are MuJoCo only: one line saying so.
    capsys.readouterr()
    assert main([*argv, "--distractor", "video_easy", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "need a MuJoCo suite" in err


@pytest.mark.slow
def test_evaluate_with_dmcgb_style_clips(sac_run, dmcgb_clips, capsys):
    argv = ["evaluate", str(sac_run), "--episodes", "1", "--episode-length", "2"]
    argv += ["--distractor", f"video_hard:{dmcgb_clips}", "--no-progress"]
    assert main(argv) == 0, capsys.readouterr().err
    name = f"video_hard@{dmcgb_clips.name}"
    assert capsys.readouterr().out.split()[0] == name
    result = json.loads((sac_run / f"eval_{name}.json").read_text())
    assert result["distractor"] == name
    assert result["distractor_source"] == f"video_hard:{dmcgb_clips}"
    assert result["distractor_set"].startswith(f"files from {dmcgb_clips}")
