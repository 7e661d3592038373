import json

import numpy as np
import pytest

from saliency_rl.data.dataset import Dataset, FieldSpec
from saliency_rl.errors import DatasetError

FIELDS = {"rgb": FieldSpec("uint8", (3, 8, 8)), "action": FieldSpec("float32", (2,))}


def episode(length: int, fill: int) -> dict:
    return {
        "rgb": np.full((length, 3, 8, 8), fill, dtype=np.uint8),
        "action": np.arange(length * 2, dtype=np.float32).reshape(length, 2),
    }


@pytest.fixture
def tiny(tmp_path):
    dataset = Dataset.create(tmp_path / "d", env_spec="fake:square", env_options={}, fields=FIELDS)
    for i, length in enumerate((5, 3, 4)):
        dataset.append_episode(episode(length, i))
    return dataset


def test_round_trip_by_episode_frame_and_batch(tiny):
    reopened = Dataset.open(tiny.root)
    assert reopened.num_episodes == 3 and reopened.num_frames == 12
    assert list(reopened.episode_lengths) == [5, 3, 4]
    np.testing.assert_array_equal(reopened.episode(1)["rgb"], episode(3, 1)["rgb"])
    assert reopened.locate(5) == (1, 0) and reopened.locate(11) == (2, 3)
    assert reopened.frame(6)["rgb"][0, 0, 0] == 1
    np.testing.assert_array_equal(reopened.frame(4)["action"], [8, 9])
    stacked = reopened.frames([0, 5, 8], ["rgb"])
    assert stacked["rgb"].shape == (3, 3, 8, 8)
    assert list(stacked["rgb"][:, 0, 0, 0]) == [0, 1, 2]
    batches = list(reopened.iter_batches(5, ["rgb"]))
    assert [len(b["rgb"]) for b in batches] == [5, 5, 2]
    all_frames = np.concatenate([b["rgb"][:, 0, 0, 0] for b in batches])
    assert list(all_frames) == [0] * 5 + [1] * 3 + [2] * 4
    with pytest.raises(IndexError):
        reopened.frame(12)


def test_meta_has_schema_version_and_provenance(fake_dataset):
    meta = json.loads((fake_dataset.root / "meta.json").read_text())
    assert meta["schema_version"] == 1
    assert meta["env_spec"] == "fake:square"
    assert meta["env_options"] == {"image_size": 32, "episode_length": 20}
    collection = meta["provenance"]["collections"][0]
    assert collection["policy"] == "random" and collection["seed"] == 0
    assert collection["episodes"] == [0, 3] and collection["package_version"]


def test_extra_field_never_rewrites_frames(tiny):
    before = {p.name: p.stat().st_mtime_ns for p in (tiny.root / "episodes").iterdir()}
    for e, length in enumerate(tiny.episode_lengths):
        tiny.write_field(
            "saliency", e, np.full((length, 8, 8), 7, np.uint8), provenance={"by": "test"}
        )
    after = {p.name: p.stat().st_mtime_ns for p in (tiny.root / "episodes").iterdir()}
    assert before == after
    reopened = Dataset.open(tiny.root)
    assert reopened.has_field("saliency")
    assert reopened.frame(7, ["saliency", "rgb"])["saliency"].shape == (8, 8)
    assert reopened.meta["extra_fields"]["saliency"]["provenance"] == {"by": "test"}


def test_extra_field_validation(tiny):
    with pytest.raises(DatasetError, match="has 2 rows"):
        tiny.write_field("saliency", 0, np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(DatasetError, match="cannot be replaced"):
        tiny.write_field("rgb", 0, np.zeros((5, 3, 8, 8), np.uint8))
    tiny.write_field("saliency", 0, np.zeros((5, 8, 8), np.uint8))
    with pytest.raises(DatasetError, match="stored as uint8"):
        tiny.write_field("saliency", 1, np.zeros((3, 8, 8), np.float32))
    assert not tiny.has_field("saliency")  # only episode 0 has it
    with pytest.raises(DatasetError, match="missing for episode 1"):
        tiny.episode(1, ["saliency"])


def test_append_validates_fields(tiny):
    bad = episode(3, 0)
    bad["rgb"] = bad["rgb"].astype(np.float32)
    with pytest.raises(DatasetError, match="field 'rgb' has dtype float32"):
        tiny.append_episode(bad)
    with pytest.raises(DatasetError, match="do not match"):
        tiny.append_episode({"rgb": episode(3, 0)["rgb"]})
    assert tiny.num_episodes == 3


def test_damaged_episode_is_named(tiny):
    path = sorted((tiny.root / "episodes").iterdir())[1]
    path.write_bytes(path.read_bytes()[:50])  # truncated, as by a full disk
    reopened = Dataset.open(tiny.root)
    np.testing.assert_array_equal(reopened.episode(0)["rgb"], episode(5, 0)["rgb"])
    with pytest.raises(DatasetError, match=f"{path.name} is damaged"):
        reopened.episode(1)


def test_foreign_files_are_named(tiny):
    stray = tiny.root / "episodes" / "notes.txt"
    stray.write_text("hello")
    with pytest.raises(DatasetError, match="unexpected file .*notes.txt"):
        Dataset.open(tiny.root)
    stray.unlink()
    (tiny.root / "meta.json").write_text("{not json")
    with pytest.raises(DatasetError, match="meta.json is damaged: not valid JSON"):
        Dataset.open(tiny.root)
    (tiny.root / "meta.json").write_text('{"hello": 1}')
    with pytest.raises(DatasetError, match="not a saliency-rl dataset"):
        Dataset.open(tiny.root)


def test_newer_schema_is_refused(tiny):
    meta = json.loads((tiny.root / "meta.json").read_text())
    meta["schema_version"] = 99
    (tiny.root / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="upgrade saliency-rl"):
        Dataset.open(tiny.root)


def test_missing_and_non_dataset_paths(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        Dataset.open(tmp_path / "nothing")
    with pytest.raises(DatasetError, match="has no meta.json"):
        Dataset.open(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match="cannot create a dataset"):
        Dataset.create(tmp_path / "file", env_spec="fake:square", env_options={}, fields=FIELDS)


def test_leftover_temporary_files_are_ignored(tiny):
    (tiny.root / "episodes" / ".episode_000003_len0009.npz.abc.tmp").write_bytes(b"half")
    assert Dataset.open(tiny.root).num_episodes == 3
