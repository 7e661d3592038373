"""The attention mask's statistics, its collapse and its pictures over time."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from saliency_rl.algos.a2c_masks import (
    PICTURE_ROWS,
    collapse_note,
    mask_statistics,
    save_mask_pictures,
)


def test_statistics_of_an_undecided_a_half_on_and_a_collapsed_mask():
    undecided = mask_statistics(torch.full((2, 1, 7, 7), 0.5))
    assert abs(undecided["policy_mask_entropy"] - 1.0) < 1e-4
    assert undecided["policy_mask_collapsed"] == 0.0
    half = torch.zeros(2, 1, 7, 7)
    half[..., :3, :] = 1.0
    statistics = mask_statistics(half)
    assert abs(statistics["policy_mask_on"] - 3 / 7) < 1e-6
    assert statistics["policy_mask_collapsed"] == 0.0 and statistics["policy_mask_entropy"] < 0.01
    assert mask_statistics(torch.zeros(2, 1, 7, 7))["policy_mask_collapsed"] == 1.0
    assert mask_statistics(torch.ones(2, 1, 7, 7))["policy_mask_collapsed"] == 1.0


def test_the_report_note_names_the_side_of_a_collapse(tmp_path):
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("step,policy_mask_mean,policy_mask_collapsed\n10,0.4,0\n20,0.01,1\n30,,\n")
    assert collapse_note(metrics) == "attention mask collapsed: all off (mean 0.010) at step 20"
    metrics.write_text("step,policy_mask_mean,policy_mask_collapsed\n10,0.4,0\n")
    assert collapse_note(metrics) is None
    assert collapse_note(tmp_path / "missing.csv") is None


def test_pictures_over_time_keep_evenly_spaced_rows(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (4, 84, 84), dtype=np.uint8)
    for step in range(1, 12):
        masks = np.full((4, 1, 7, 7), step / 12, np.float32)
        save_mask_pictures(tmp_path, step * 100, frames, masks)
    assert len(list((tmp_path / "masks").glob("*.png"))) == 11
    figure = Image.open(tmp_path / "figures" / "attention_masks.png")
    assert figure.size == (4 * 84, PICTURE_ROWS * (84 + 2))


def test_the_report_warns_of_a_collapsed_mask(tmp_path):
    import json

    from saliency_rl.experiments.report import write_report

    run = tmp_path / "run"
    run.mkdir()
    config = {"algo": "a2c", "env": "atari:Pong", "config": {"attention": "joint"}, "seed": 0}
    (run / "config.json").write_text(json.dumps(config))
    (run / "metrics.csv").write_text("step,policy_mask_mean,policy_mask_collapsed\n20,0.99,1\n")
    write_report([run], tmp_path / "report")
    page = (tmp_path / "report" / "report.md").read_text()
    assert "## Warnings" in page and "run: attention mask collapsed: all on" in page
