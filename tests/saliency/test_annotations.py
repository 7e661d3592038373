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


def test_with_a_predictor_suggestions_go_to_its_least_sure_frames_deterministically(
    fake_dataset_64, tiny_predictor_64
):
    from saliency_rl.saliency.annotations import suggest_frames
    from saliency_rl.saliency.predictor import SaliencyPredictor
    from saliency_rl.saliency.uncertainty import frame_uncertainty, uncertainty_of

    predictor = SaliencyPredictor.load(tiny_predictor_64, device="cpu")
    unsure = uncertainty_of(predictor, fake_dataset_64)
    chosen = suggest_frames(fake_dataset_64, 5, [], unsure, seed=3)
    assert chosen == suggest_frames(fake_dataset_64, 5, [], unsure, seed=3)  # deterministic
    assert len(set(chosen)) == 5
    scores = frame_uncertainty(predictor, fake_dataset_64, range(fake_dataset_64.num_frames))
    assert chosen[0] == int(np.argmax(scores))  # nothing chosen yet: the least sure frame
    extended = suggest_frames(fake_dataset_64, 7, chosen[:2], unsure, seed=3)
    assert extended[:2] == chosen[:2] and len(set(extended)) == 7
    # The store plans the same frames, and writes nothing while planning.
    store = AnnotationStore(fake_dataset_64)
    selection = store.selection()
    planned = store.plan_selection(len(selection) + 2, 3, True, unsure)
    assert planned[: len(selection)] == selection and store.selection() == selection


def test_map_entropy_and_the_walk_order():
    from saliency_rl.saliency.uncertainty import map_entropy, walk_order

    maps = np.stack([np.full((4, 4), 0.5), np.zeros((4, 4)), np.ones((4, 4))])
    np.testing.assert_allclose(map_entropy(maps), [1.0, 0.0, 0.0], atol=1e-5)
    done = [False, True, False, False]
    assert walk_order(done) == [0, 1, 2, 3]  # coverage order until a predictor exists
    assert walk_order(done, [0.1, 0.9, 0.5, 0.5]) == [1, 2, 3, 0]  # done first, ties kept
    with pytest.raises(ValueError, match="3 scores for 4 positions"):
        walk_order(done, [0.1, 0.2, 0.3])


def test_a_predicted_map_becomes_its_highest_peaks_as_clicks():
    from saliency_rl.saliency.maps import clicks_to_map
    from saliency_rl.saliency.predicted_clicks import clicks_from_map

    first = clicks_to_map(np.array([[10.5, 12.5]]), 64, 64)
    second = clicks_to_map(np.array([[50.5, 40.5]]), 64, 64)
    saliency = np.maximum(first, 0.9 * second)  # the second body a little less sure
    assert clicks_from_map(saliency, 2.5) == [(10.5, 12.5), (50.5, 40.5)]
    assert clicks_from_map(saliency, 2.5, max_clicks=1) == [(10.5, 12.5)]
    assert clicks_from_map(saliency * 0.4, 2.5) == []  # nowhere more likely salient than not
    flat = np.full((8, 8), 0.6)  # a plateau: one click per suppression disc, row-major first
    clicks = clicks_from_map(flat, 1.0)
    assert clicks[0] == (0.5, 0.5) and len(clicks) == 3
    assert all(0 <= x < 8 and 0 <= y < 8 for x, y in clicks)
