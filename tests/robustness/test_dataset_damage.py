"""Damaged, foreign and untrusted dataset files; a killed collect; file modes (issue 21).

Cases 3, 4 (label), 6, 7 and 8: each command that must fail leaves the dataset byte-identical
(``tree_digest``), exits 2 and says in one line which file is wrong and what was expected.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from robustness_helpers import run_cli, tree_digest

from saliency_rl.data.collect import collect
from saliency_rl.data.dataset import Dataset
from saliency_rl.errors import DatasetError

QUIET = ["--no-progress"]
PRETRAIN = ["--modalities", "rgb,saliency", "--steps", "1", "--batch-size", "2", "--model", "tiny"]


def one_line(output: str) -> str:
    """The error line the CLI printed; fails if there is a traceback instead."""
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("saliency-rl: error:")]
    assert len(errors) == 1, output
    return errors[0]


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def label_with_oracle_maps(dataset: Dataset) -> None:
    """A ``saliency`` field for every episode (what `label` would write), without a predictor."""
    for episode, length in enumerate(dataset.episode_lengths):
        dataset.write_field("saliency", episode, np.full((length, 32, 32), 9, np.uint8))


def episode_path(root: Path, episode: int) -> Path:
    (path,) = (Path(root) / "episodes").glob(f"episode_{episode:06d}_len*.npz")
    return path


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)


# ---------------------------------------------------------------------- case 3
def test_pretrain_names_a_field_file_of_the_wrong_frame_shape(fake_dataset, tmp_path, capsys):
    label_with_oracle_maps(fake_dataset)
    bad = fake_dataset.root / "fields" / "saliency" / "episode_000001.npz"
    save_npz(bad, saliency=np.zeros((21, 16, 16), np.uint8))
    before = tree_digest(fake_dataset.root)
    code, output = run_cli(
        ["pretrain", fake_dataset.root, *PRETRAIN, "--out", tmp_path / "mm", *QUIET], capsys
    )
    assert code == 2
    line = one_line(output)
    assert str(bad) in line and "uint8 (16, 16)" in line and "declares uint8 (32, 32)" in line
    assert tree_digest(fake_dataset.root) == before
    assert not (tmp_path / "mm").exists()


def test_pretrain_names_a_float_nan_file_where_uint8_is_declared(fake_dataset, tmp_path, capsys):
    label_with_oracle_maps(fake_dataset)
    bad = fake_dataset.root / "fields" / "saliency" / "episode_000002.npz"
    save_npz(bad, saliency=np.full((21, 32, 32), np.nan, np.float32))
    before = tree_digest(fake_dataset.root)
    code, output = run_cli(
        ["pretrain", fake_dataset.root, *PRETRAIN, "--out", tmp_path / "mm", *QUIET], capsys
    )
    assert code == 2
    line = one_line(output)
    assert str(bad) in line and "float32" in line and "declares uint8" in line
    assert "--lr" not in line  # not blamed on the learning rate
    assert tree_digest(fake_dataset.root) == before


def test_every_read_checks_a_float_field_for_nan(fake_dataset, capsys):
    for episode, length in enumerate(fake_dataset.episode_lengths):
        fake_dataset.write_field("features_x", episode, np.ones((length, 4), np.float32))
    bad = fake_dataset.root / "fields" / "features_x" / "episode_000001.npz"
    values = np.ones((21, 4), np.float32)
    values[5, 2] = np.nan
    save_npz(bad, features_x=values)  # the right dtype and shape: only reading finds it
    dataset = Dataset.open(fake_dataset.root)
    with pytest.raises(DatasetError, match=r"episode_000001\.npz holds NaN or inf.*frame 5"):
        dataset.episode(1, ["features_x"])
    before = tree_digest(fake_dataset.root)
    code, output = run_cli(["info", fake_dataset.root, "--check"], capsys)
    assert code == 2
    line = one_line(output)
    assert str(bad) in line and "NaN or inf" in line and "'features_x'" in line
    assert tree_digest(fake_dataset.root) == before


def test_an_episode_file_with_a_field_of_the_wrong_dtype_is_named(fake_dataset):
    path = episode_path(fake_dataset.root, 0)
    with np.load(path) as archive:
        arrays = {n: archive[n] for n in archive.files}
    arrays["reward"] = arrays["reward"].astype(np.float64)
    save_npz(path, **arrays)
    dataset = Dataset.open(fake_dataset.root)
    with pytest.raises(DatasetError, match=r"episode_000000_len0021\.npz.*'reward' is float64"):
        dataset.episode(0)


# ---------------------------------------------------------------------- case 4 (label)
@pytest.fixture
def predictor(fake_dataset, tmp_path):
    """A tiny predictor for the fake dataset's 32x32 frames, fitted for 2 steps."""
    from saliency_rl.saliency.annotations import annotate_with_oracle
    from saliency_rl.saliency.fit import fit_predictor

    annotate_with_oracle(fake_dataset, 4, seed=0)
    out = tmp_path / "predictor"
    fit_predictor(
        fake_dataset, out, size="tiny", steps=2, batch_size=2, holdout_frames=[],
        progress=False, device="cpu",
    )  # fmt: skip
    return out


def test_label_checks_every_episode_before_writing(fake_dataset, predictor, capsys):
    damaged = episode_path(fake_dataset.root, 1)
    truncate(damaged)
    before = tree_digest(fake_dataset.root)
    code, output = run_cli(
        ["label", fake_dataset.root, "--predictor", predictor, "--device", "cpu", *QUIET], capsys
    )
    assert code == 2
    line = one_line(output)
    assert str(damaged) in line and "damaged" in line
    assert tree_digest(fake_dataset.root) == before  # no episode 0 labels, meta.json as it was


def test_label_that_fails_midway_leaves_the_dataset_as_it_was(fake_dataset, predictor, capsys):
    # Damage inside the last episode's file that its headers do not show: a flipped byte
    # in the frames, found only when they are read (after two episodes were labelled).
    damaged = episode_path(fake_dataset.root, 2)
    data = bytearray(damaged.read_bytes())
    with np.load(damaged) as archive:
        order = archive.files
    assert order[0] == "rgb"  # the frames come first in the file
    data[len(data) // 4] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with np.load(damaged) as archive:  # the file opens, its frames do not
        assert archive.files == order
        with pytest.raises(Exception):  # noqa: B017 - zlib's or zipfile's, either will do
            archive["rgb"]
    before = tree_digest(fake_dataset.root)
    code, output = run_cli(
        ["label", fake_dataset.root, "--predictor", predictor, "--device", "cpu", *QUIET], capsys
    )
    assert code == 2
    assert str(damaged) in one_line(output)
    assert tree_digest(fake_dataset.root) == before
    assert (
        "saliency" not in json.loads((fake_dataset.root / "meta.json").read_text())["extra_fields"]
    )


@pytest.mark.parametrize("killed_after", ["first rename", "second rename"])
def test_a_commit_killed_between_its_steps_is_finished_by_the_next_run(
    fake_dataset, monkeypatch, killed_after
):
    # Labels of predictor A in place; predictor B's commit is killed midway.
    label_with_oracle_maps(fake_dataset)
    old_maps = fake_dataset.episode(0, ["saliency"])["saliency"]
    staging = fake_dataset.stage_field("saliency", {"predictor_hash": "B"}, ("predictor_hash",))
    for episode, length in enumerate(fake_dataset.episode_lengths):
        staging.write(episode, np.full((length, 32, 32), 200, np.uint8))
    replace = os.replace
    calls = []

    def killed(source, target):
        if not Path(source).is_dir():  # a file written atomically, not one of the two renames
            return replace(source, target)
        calls.append(source)
        if len(calls) == (1 if killed_after == "first rename" else 2):
            replace(source, target)
            raise KeyboardInterrupt  # stands for SIGKILL: nothing after this step runs
        replace(source, target)

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        staging.commit()
    monkeypatch.setattr(os, "replace", replace)

    dataset = Dataset.open(fake_dataset.root)
    staging = dataset.stage_field("saliency", {"predictor_hash": "B"}, ("predictor_hash",))
    if killed_after == "first rename":  # undone: A's labels are back, B's staged maps kept
        assert dataset.meta["extra_fields"]["saliency"].get("provenance") is None
        assert np.array_equal(dataset.episode(0, ["saliency"])["saliency"], old_maps)
        assert staging.done() == {0, 1, 2}
        staging.commit()
    assert dataset.meta["extra_fields"]["saliency"]["provenance"] == {"predictor_hash": "B"}
    assert (dataset.episode(2, ["saliency"])["saliency"] == 200).all()
    assert sorted(p.name for p in (fake_dataset.root / "fields").iterdir()) == ["saliency"]
    assert Dataset.open(fake_dataset.root).check() == []


# ---------------------------------------------------------------------- case 6
def test_info_names_a_truncated_episode(fake_dataset, capsys):
    damaged = episode_path(fake_dataset.root, 2)
    truncate(damaged)
    before = tree_digest(fake_dataset.root)
    code, output = run_cli(["info", fake_dataset.root], capsys)
    assert code == 2
    line = one_line(output)
    assert str(damaged) in line and "damaged" in line
    assert tree_digest(fake_dataset.root) == before


@pytest.fixture
def foreign_episode(fake_dataset, tmp_path):
    """An episode of another dataset (16x16 frames, 61 frames) put in as episode 3."""
    other = collect(
        "fake:square", tmp_path / "other", episodes=1, seed=5,
        env_options={"image_size": 16, "episode_length": 60}, progress=False,
    )  # fmt: skip
    target = fake_dataset.root / "episodes" / "episode_000003_len0061.npz"
    target.write_bytes(episode_path(other.root, 0).read_bytes())
    return target


def test_info_names_a_foreign_episode_file(fake_dataset, foreign_episode, capsys):
    before = tree_digest(fake_dataset.root)
    code, output = run_cli(["info", fake_dataset.root], capsys)
    assert code == 2
    line = one_line(output)
    assert str(foreign_episode) in line and "declares uint8 (3, 32, 32)" in line
    assert tree_digest(fake_dataset.root) == before


def test_pretrain_names_a_foreign_episode_not_a_missing_field(
    fake_dataset, foreign_episode, tmp_path, capsys
):
    label_with_oracle_maps(Dataset.open(fake_dataset.root))  # the foreign one gets none
    before = tree_digest(fake_dataset.root)
    code, output = run_cli(
        ["pretrain", fake_dataset.root, *PRETRAIN, "--out", tmp_path / "mm", *QUIET], capsys
    )
    assert code == 2
    line = one_line(output)
    assert str(foreign_episode) in line
    assert tree_digest(fake_dataset.root) == before


def test_pretrain_names_the_episode_that_lacks_a_field(fake_dataset, tmp_path, capsys):
    # An episode of the same spec collected after labelling: its headers are sound.
    label_with_oracle_maps(fake_dataset)
    collect("fake:square", fake_dataset.root, episodes=1, progress=False)
    newcomer = episode_path(fake_dataset.root, 3)
    before = tree_digest(fake_dataset.root)
    code, output = run_cli(["info", fake_dataset.root], capsys)
    assert code == 0 and f"missing for 1 of 4 episodes (first: {newcomer})" in output
    code, output = run_cli(
        ["pretrain", fake_dataset.root, *PRETRAIN, "--out", tmp_path / "mm", *QUIET], capsys
    )
    assert code == 2
    line = one_line(output)
    assert str(newcomer) in line and "has no saliency field" in line
    assert tree_digest(fake_dataset.root) == before


# ---------------------------------------------------------------------- case 7
def covered(dataset: Dataset) -> list[int]:
    """Every episode index some collection record covers, with repeats."""
    return [e for c in dataset.meta["provenance"]["collections"] for e in range(*c["episodes"])]


def test_a_killed_collect_records_every_episode_it_wrote(tmp_path, capsys):
    out = tmp_path / "d"
    command = [
        str(Path(sys.executable).with_name("saliency-rl")), "collect", "--env", "fake:square",
        "--out", str(out), "--episodes", "100000", "--image-size", "16",
        "--episode-length", "3", "--seed", "7", "--no-progress",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 90
        while len(list((out / "episodes").glob("*.npz")) if out.is_dir() else []) < 5:
            assert process.poll() is None, "collect ended before it could be killed"
            assert time.time() < deadline, "collect never wrote 5 episodes"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    dataset = Dataset.open(out)
    written = dataset.num_episodes
    assert written >= 5
    (record,) = dataset.meta["provenance"]["collections"]
    assert record["policy"] == "random" and record["seed"] == 7
    assert set(range(written)) <= set(covered(dataset))

    # Appending trims the record to what is on disk and adds its own: one record each.
    code, _ = run_cli(["collect", "--env", "fake:square", "--out", out, "--episodes", "2", *QUIET], capsys)  # fmt: skip
    assert code == 0
    dataset = Dataset.open(out)
    assert covered(dataset) == list(range(written + 2))
    first, second = dataset.meta["provenance"]["collections"]
    assert first["episodes"] == [0, written] and second["episodes"] == [written, written + 2]
    assert first["frames"] == int(dataset.episode_lengths[:written].sum())


def test_appending_records_episodes_an_older_collect_left_unrecorded(fake_dataset, capsys):
    # What a collect killed before this fix left: episodes on disk, no collection record.
    meta = json.loads((fake_dataset.root / "meta.json").read_text())
    meta["provenance"]["collections"] = []
    (fake_dataset.root / "meta.json").write_text(json.dumps(meta))
    argv = ["collect", "--env", "fake:square", "--out", fake_dataset.root, "--episodes", "2"]
    code, _ = run_cli([*argv, *QUIET], capsys)
    assert code == 0
    dataset = Dataset.open(fake_dataset.root)
    assert covered(dataset) == list(range(5))
    recovered, new = dataset.meta["provenance"]["collections"]
    assert recovered["episodes"] == [0, 3] and "recovered" in recovered
    assert "policy" not in recovered and new["policy"] == "random"


# ---------------------------------------------------------------------- case 8
@pytest.fixture
def umask():
    """Set the process umask for one test, then restore it."""
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002], ids=["umask022", "umask002"])
def test_written_files_get_the_mode_the_umask_gives(tmp_path, capsys, umask, mask):
    import torch

    from saliency_rl.checkpoint import save_checkpoint

    umask(mask)
    file_mode, dir_mode = 0o666 & ~mask, 0o777 & ~mask
    out = tmp_path / "d"
    argv = ["collect", "--env", "fake:square", "--out", out, "--episodes", "1"]
    code, _ = run_cli([*argv, "--image-size", "16", "--episode-length", "2", *QUIET], capsys)
    assert code == 0
    assert mode(out / "meta.json") == file_mode
    assert {mode(p) for p in (out / "episodes").iterdir()} == {file_mode}

    checkpoint = save_checkpoint(
        tmp_path / "ckpt", {"model": "x"}, {"w": torch.zeros(2)}, training_state={"step": 1}
    )
    assert mode(checkpoint) == dir_mode
    files = [p for p in checkpoint.rglob("*") if p.is_file()]
    assert len(files) == 4 and {mode(p) for p in files} == {file_mode}


def test_a_rewrite_keeps_the_mode_the_user_gave_the_file(tmp_path, umask):
    from saliency_rl.data.atomic import atomic_write_text

    path = tmp_path / "notes.json"
    path.write_text("{}")
    os.chmod(path, 0o640)
    atomic_write_text(path, '{"a": 1}')  # as open(path, "w") would: the file keeps its mode
    assert mode(path) == 0o640


def test_multimae_weights_get_the_mode_the_umask_gives(tmp_path, umask):
    from saliency_rl.models.multimae import MultiMAE, multimae_config

    model = MultiMAE(multimae_config("tiny", ("rgb",), image_size=(16, 16)))
    directory = model.save_pretrained(tmp_path / "mm")
    assert {mode(p) for p in directory.iterdir()} == {0o644}
