"""Issue 21, cases 1, 4 (annotate), 5 and 9 (predictors): annotations a person made are never
lost, a command that fails leaves the dataset as it was, and a wrong directory or environment
is named. Each test hashes the dataset before and after (tests/robustness/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from robustness_helpers import run_cli, tree_digest

from saliency_rl.data.collect import collect
from saliency_rl.saliency.annotations import AnnotationStore
from saliency_rl.saliency.predictor import SaliencyPredictor
from saliency_rl.saliency.web.server import AnnotationApp


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text  # one line, no traceback
    return lines[0]


def annotation_files(root: Path, frames) -> dict[str, tuple[str, int]]:
    digest = tree_digest(root)
    return {k: v for k, v in digest.items() if any(f"frame_{f:08d}" in k for f in frames)}


@pytest.fixture
def atari_dataset(tmp_path):
    """8 frames of atari:Pong: the emulator records salient_points of shape (0, 2)."""
    return collect("atari:Pong", tmp_path / "pong", frames=8, seed=0, progress=False)


# ---------------------------------------------------------------------- case 1
def test_the_oracle_never_touches_a_persons_clicks_unless_asked(fake_dataset, capsys):
    root = fake_dataset.root
    app = AnnotationApp(fake_dataset, 4, seed=0, annotator="ann")  # the web page
    app.put_clicks(0, [(5.0, 6.0)])
    app.put_clicks(2, [(7.0, 8.0), (9.0, 10.0)])
    persons = [app.frames[0], app.frames[2]]
    before = annotation_files(root, persons)

    code, text = run_cli(["annotate", root, "--oracle", "--frames", "4"], capsys)
    assert code == 0, text
    assert "oracle annotated 2 of 4 frames" in text
    assert "kept 2 frames a person annotated" in text and "--oracle-overwrite" in text
    assert annotation_files(root, persons) == before  # byte-identical, mtimes included
    store = AnnotationStore(fake_dataset)
    assert {c.annotator for f in persons for c in store.clicks(f)} == {"ann"}
    assert {c.annotator for f in app.frames[1::2] for c in store.clicks(f)} == {"oracle"}

    code, text = run_cli(
        ["annotate", root, "--oracle", "--frames", "4", "--oracle-overwrite"], capsys
    )
    assert code == 0 and "replaced a person's clicks on 2 frames" in text
    assert {c.annotator for f in persons for c in store.clicks(f)} == {"oracle"}


def test_a_frame_a_person_edited_after_the_oracle_is_the_persons(fake_dataset, capsys):
    root = fake_dataset.root
    assert run_cli(["annotate", root, "--oracle", "--frames", "3"], capsys)[0] == 0
    app = AnnotationApp(fake_dataset, 3, seed=0, annotator="ann")
    oracle_click = AnnotationStore(fake_dataset).clicks(app.frames[1])[0]
    app.put_clicks(1, [(oracle_click.x, oracle_click.y), (3.0, 4.0)])  # kept one, added one
    before = tree_digest(root)

    code, text = run_cli(["annotate", root, "--oracle", "--frames", "3"], capsys)
    assert code == 0 and "kept 1 frames a person annotated" in text
    assert tree_digest(root) == before


def test_rerunning_the_oracle_rewrites_nothing(fake_dataset, capsys):
    root = fake_dataset.root
    assert run_cli(["annotate", root, "--oracle", "--frames", "10"], capsys)[0] == 0
    before = tree_digest(root)

    code, text = run_cli(["annotate", root, "--oracle", "--frames", "10"], capsys)
    assert code == 0 and "10 already held these clicks and were not rewritten" in text
    assert tree_digest(root) == before  # no new time stamps: byte-identical, mtimes included


def test_oracle_overwrite_needs_the_oracle(fake_dataset, capsys):
    before = tree_digest(fake_dataset.root)
    code, text = run_cli(["annotate", fake_dataset.root, "--oracle-overwrite"], capsys)
    assert code == 2 and "--oracle-overwrite is only used with --oracle" in one_line(text)
    assert tree_digest(fake_dataset.root) == before


# ---------------------------------------------------------------------- case 4 (annotate)
def test_a_damaged_episode_stops_the_oracle_before_it_writes(fake_dataset, capsys):
    root = fake_dataset.root
    assert run_cli(["annotate", root, "--oracle", "--frames", "6"], capsys)[0] == 0
    last = sorted((root / "episodes").glob("episode_*.npz"))[-1]
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # a truncated copy
    before = tree_digest(root)

    code, text = run_cli(["annotate", root, "--oracle", "--frames", "12"], capsys)
    assert code == 2
    assert last.name in one_line(text)
    assert tree_digest(root) == before  # selection.json not grown, no annotation rewritten
    assert len(AnnotationStore(fake_dataset).selection()) == 6


# ---------------------------------------------------------------------- case 5
def test_the_oracle_refuses_an_environment_without_salient_points(atari_dataset, capsys):
    root = atari_dataset.root
    before = tree_digest(root)

    code, text = run_cli(["annotate", root, "--oracle", "--frames", "3"], capsys)
    assert code == 2
    line = one_line(text)
    assert "atari:Pong has no oracle salient points" in line and "(0, 2)" in line
    assert f"saliency-rl annotate {root}" in line and "pretrain-attention" in line
    assert tree_digest(root) == before and not (root / "annotations").exists()


def test_train_saliency_refuses_annotations_whose_maps_are_all_empty(
    atari_dataset, tmp_path, capsys
):
    # What the oracle used to store for Atari frames: annotation files with no clicks.
    store = AnnotationStore(atari_dataset)
    for frame in store.select(4, seed=0):
        store.save(frame, [])
    root, out = atari_dataset.root, tmp_path / "predictor"
    before = tree_digest(root)

    argv = ["train-saliency", root, "--out", out, "--size", "tiny", "--steps", "2"]
    code, text = run_cli([*argv, "--device", "cpu", "--no-progress"], capsys)
    assert code == 2
    line = one_line(text)
    assert "none of the 4 annotated frames" in line and str(root / "annotations") in line
    assert tree_digest(root) == before and not out.exists()


# ---------------------------------------------------------------------- case 9 (predictors)
def test_a_multimae_run_given_as_predictor_is_named(tiny_multimae_64, fake_dataset_64, capsys):
    run = tiny_multimae_64["rgb+saliency"]
    root = fake_dataset_64.root
    before = tree_digest(root)
    step = sorted((run / "checkpoints").glob("step_*"))[-1]
    for predictor, what in ((run, "a MultiMAE run"), (step, "a MultiMAE checkpoint")):
        code, text = run_cli(["label", root, "--predictor", predictor, "--no-progress"], capsys)
        assert code == 2
        line = one_line(text)
        assert f"{predictor} is {what}, not a saliency predictor" in line, line
        assert "train-saliency" in line and "config.json" not in line
    assert tree_digest(root) == before


def test_a_dataset_given_as_predictor_is_named(fake_dataset, capsys):
    root = fake_dataset.root
    code, text = run_cli(["label", root, "--predictor", root, "--no-progress"], capsys)
    assert code == 2 and f"{root} is a dataset, not a saliency predictor" in one_line(text)


def test_a_predictor_of_another_environment_warns_once(tiny_predictor_64, capsys):
    trained = json.loads((tiny_predictor_64 / "config.json").read_text())["env_spec"]
    assert trained == "fake:square"
    SaliencyPredictor.load(tiny_predictor_64, device="cpu", env_spec=trained)
    assert capsys.readouterr().err == ""  # the same environment: nothing to say

    for _ in range(2):
        predictor = SaliencyPredictor.load(
            tiny_predictor_64, device="cpu", env_spec="dmc:cheetah-run"
        )
    line = one_line(capsys.readouterr().err)  # once, though loaded twice
    assert "warning" in line and "fake:square" in line and "dmc:cheetah-run" in line
    assert str(tiny_predictor_64) in line
    assert predictor.env_spec == "fake:square"  # a warning, not an error


def test_a_person_cannot_annotate_under_the_oracles_name(fake_dataset):
    """The oracle treats clicks named ``oracle`` as its own and may replace them, so the web
    page refuses that name for a person."""
    from saliency_rl.errors import SaliencyRLError

    for name in ("oracle", " Oracle "):
        with pytest.raises(SaliencyRLError, match="reserved for `annotate --oracle`"):
            AnnotationApp(fake_dataset, 2, seed=0, annotator=name)
