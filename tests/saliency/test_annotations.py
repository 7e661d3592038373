import json

import numpy as np
import pytest

from saliency_rl.errors import DatasetError
from saliency_rl.saliency.annotations import AnnotationStore, Click, annotate_with_oracle, now


def test_selection_is_spread_seeded_and_kept(fake_dataset):
    store = AnnotationStore(fake_dataset)
    frames = store.select(6, seed=1)
    assert len(set(frames)) == 6
    episodes = {fake_dataset.locate(f)[0] for f in frames}
    assert episodes == {0, 1, 2}  # spread over every episode
    assert store.select(4, seed=99) == frames[:4]  # an earlier choice is kept
    assert store.select(8, seed=99)[:6] == frames  # and extended
    with pytest.raises(DatasetError, match="only 63"):
        store.select(1000)


def test_oracle_clicks_are_stored_like_a_persons(fake_dataset):
    frames = annotate_with_oracle(fake_dataset, 5, seed=0).frames
    store = AnnotationStore(fake_dataset)
    assert store.annotated() == sorted(frames)
    record = json.loads((store.root / f"frame_{frames[0]:08d}.json").read_text())
    assert set(record) >= {"frame", "episode", "step", "image_size", "clicks"}
    assert set(record["clicks"][0]) == {"x", "y", "sigma", "annotator", "time"}
    for frame in frames:
        (click,) = store.clicks(frame)
        point = fake_dataset.frame(frame, ["salient_points"])["salient_points"][0]
        assert (click.x, click.y) == pytest.approx(tuple(point))
        assert click.annotator == "oracle" and click.sigma == pytest.approx(10 * 32 / 256)
        saliency = store.saliency_map(frame)
        row, col = np.unravel_index(saliency.argmax(), saliency.shape)
        assert (col, row) == (int(point[0]), int(point[1]))


def test_save_validates_frame_and_position(fake_dataset):
    store = AnnotationStore(fake_dataset)
    with pytest.raises(DatasetError, match="frame 999 does not exist"):
        store.save(999, [])
    with pytest.raises(DatasetError, match="outside the 32x32 frame"):
        store.save(0, [Click(40.0, 3.0, 1.0, "me", now())])
    store.save(0, [Click(4.0, 3.0, 1.0, "me", now())])
    assert store.clicks(0)[0].annotator == "me"


def test_damaged_annotation_is_named(fake_dataset):
    store = AnnotationStore(fake_dataset)
    store.save(0, [])
    (store.root / "frame_00000000.json").write_text("{oops")
    with pytest.raises(DatasetError, match="frame_00000000.json is damaged"):
        store.clicks(0)


def test_delete_forgets_a_frame(fake_dataset):
    store = AnnotationStore(fake_dataset)
    store.save(3, [Click(4.0, 3.0, 1.0, "me", now())])
    store.delete(3)
    store.delete(3)  # twice is fine
    assert store.annotated() == [] and store.clicks(3) == []


def test_suggested_frames_cover_the_dataset_first(fake_dataset):
    import numpy as np

    from saliency_rl.saliency.annotations import frame_features, suggest_frames

    features = frame_features(fake_dataset)
    assert features.shape == (fake_dataset.num_frames, 3 * 8 * 8)
    chosen = suggest_frames(fake_dataset, 6)
    assert len(set(chosen)) == 6 and chosen == suggest_frames(fake_dataset, 6)  # deterministic

    # k-center: the cover's radius (the farthest any frame is from its nearest chosen frame)
    # is smaller than that of evenly spread frames, the default selection
    def radius(frames):
        d = ((features[:, None] - features[frames][None]) ** 2).sum(-1)
        return float(d.min(axis=1).max())

    spread = AnnotationStore(fake_dataset).plan_selection(6, seed=0)
    assert radius(chosen) <= radius(spread)
    assert suggest_frames(fake_dataset, 8, chosen[:3])[:3] == chosen[:3]  # extends a selection
    assert np.isfinite(radius(chosen))


def test_oracle_and_cli_suggest_keep_an_earlier_selection(fake_dataset, capsys):
    from saliency_rl.cli import main

    root = str(fake_dataset.root)
    assert main(["annotate", root, "--oracle", "--frames", "3", "--suggest"]) == 0
    first = AnnotationStore(fake_dataset).selection()
    assert main(["annotate", root, "--oracle", "--frames", "5", "--suggest"]) == 0
    assert AnnotationStore(fake_dataset).selection()[:3] == first
    assert "oracle annotated" in capsys.readouterr().out
