"""The command line end to end: help, tiny real runs, and one clear line on bad input."""

import subprocess
import sys

import pytest

from saliency_rl.cli import main


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "saliency_rl.cli", *args], capture_output=True, text=True
    )


def test_help_lists_every_command():
    result = run("--help")
    assert result.returncode == 0
    for command in ("demo", "collect", "annotate", "info", "envs"):
        assert command in result.stdout
    for command in ("demo", "collect", "annotate", "info", "envs"):
        assert run(command, "--help").returncode == 0


def test_every_command_module_is_registered_in_pipeline_order():
    import pkgutil

    import saliency_rl.commands as package
    from saliency_rl.cli import COMMANDS, build_parser, command_module

    modules = {i.name for i in pkgutil.iter_modules(package.__path__)} - {"args"}
    assert {
        command_module(c).rpartition(".")[2] for c in COMMANDS
    } == modules  # a new module must be listed, or it never shows
    listed = list(build_parser()._subparsers._group_actions[0].choices)
    assert listed[:3] == ["collect", "annotate", "info"] and "train" in listed


def test_collect_annotate_info_through_the_cli(tmp_path, capsys):
    out = tmp_path / "d"
    assert (
        main(
            [
                "collect",
                "--env",
                "dmc:cartpole-swingup",
                "--out",
                str(out),
                "--frames",
                "30",
                "--no-progress",
                "--action-repeat",
                "8",
            ]
        )
        == 0
    )
    assert main(["annotate", str(out), "--oracle", "--frames", "5"]) == 0
    assert main(["info", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "frames 30" in printed and "annotated 5 frames" in printed


def one_error_line(result, *fragments):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, no traceback
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (
            ["collect", "--env", "dmc:cartpol-swingup", "--out", "X", "--episodes", "1"],
            ["unknown dmc task 'cartpol-swingup'", "did you mean cartpole-swingup"],
        ),
        (
            ["collect", "--env", "metaworld:drawer-opn", "--out", "X", "--episodes", "1"],
            ["did you mean drawer-open"],
        ),
        (
            ["collect", "--env", "atari:MsPacmn", "--out", "X", "--episodes", "1"],
            ["did you mean MsPacman"],
        ),
        (
            ["collect", "--env", "mujoco:walker", "--out", "X", "--episodes", "1"],
            ["unknown suite 'mujoco'", "valid suites"],
        ),
        (["collect", "--env", "cartpole", "--out", "X", "--episodes", "1"], ["SUITE:TASK"]),
        (
            ["collect", "--env", "dmc:cartpole-swingup", "--out", "X", "--episodes", "0"],
            ["positive integer"],
        ),
        (
            [
                "collect",
                "--env",
                "dmc:cartpole-swingup",
                "--out",
                "X",
                "--episodes",
                "1",
                "--image-size",
                "big",
            ],
            ["not an integer"],
        ),
        (
            [
                "collect",
                "--env",
                "dmc:cartpole-swingup",
                "--out",
                "X",
                "--episodes",
                "1",
                "--camera",
                "top",
            ],
            ["unknown camera 'top'", "valid cameras"],
        ),
        (
            [
                "collect",
                "--env",
                "dmc:cartpole-swingup",
                "--out",
                "X",
                "--episodes",
                "1",
                "--preset",
                "atari",
            ],
            ["for atari tasks"],
        ),
        (["info", "no/such/dataset"], ["does not exist"]),
        (["annotate", "no/such/dataset", "--oracle"], ["does not exist"]),
    ],
)
def test_bad_input_gives_one_clear_line(tmp_path, args, fragments):
    args = [str(tmp_path / a) if a == "X" else a for a in args]
    one_error_line(run(*args), *fragments)
    assert not (tmp_path / "X").exists()  # nothing half-made on disk


def test_wrong_spec_for_an_existing_dataset_keeps_it(tmp_path, fake_dataset):
    before = sorted(p.name for p in (fake_dataset.root / "episodes").iterdir())
    one_error_line(
        run(
            "collect",
            "--env",
            "dmc:cartpole-swingup",
            "--out",
            str(fake_dataset.root),
            "--episodes",
            "1",
        ),
        "holds fake:square",
    )
    assert sorted(p.name for p in (fake_dataset.root / "episodes").iterdir()) == before


def test_damaged_dataset_gives_one_line(fake_dataset):
    path = sorted((fake_dataset.root / "episodes").iterdir())[0]
    path.write_bytes(b"garbage")
    one_error_line(
        run("annotate", str(fake_dataset.root), "--oracle", "--frames", "50"), path.name, "damaged"
    )


def test_collect_metaworld_expert_demonstrations(tmp_path, capsys):
    out = tmp_path / "demos"
    assert (
        main(
            [
                "collect",
                "--env",
                "metaworld:reach",
                "--out",
                str(out),
                "--episodes",
                "1",
                "--policy",
                "expert",
                "--episode-length",
                "100",
                "--no-progress",
            ]
        )
        == 0
    )
    from saliency_rl.data import Dataset

    episode = Dataset.open(out).episode(0)
    assert episode["success"].any()  # the scripted expert reaches the goal within 100 steps
    assert episode["proprio"].shape == (101, 4) and episode["salient_points"].shape == (101, 2, 2)


def test_collect_atari_frames(tmp_path, capsys):
    out = tmp_path / "pacman"
    assert (
        main(
            [
                "collect",
                "--env",
                "atari:MsPacman",
                "--out",
                str(out),
                "--frames",
                "40",
                "--no-progress",
            ]
        )
        == 0
    )
    from saliency_rl.data import Dataset

    dataset = Dataset.open(out)
    assert dataset.num_frames == 40
    assert dataset.fields["rgb"].shape == (1, 84, 84)  # the newest grey frame of the stack of 4
    assert "raw_reward" in dataset.fields and "proprio" not in dataset.fields
