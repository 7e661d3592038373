"""Saliency with no person (issue 25, item 1): max F-beta and MAE of the self-supervised
attention module's maps against the oracle's, beside the clicked predictor's.

For each task: the test set of benchmarks/saliency_predictors.py (2,000 random-policy frames,
seeds 1000+, preset visarl-dmc, 64x64; 200 frames clicked by the oracle as the ground truth,
the same protocol), then ``pretrain-attention`` on that dataset's own frame pairs, no labels
(what ``label DIR --attention`` does for a user), at each mask grid of --grids, and the
upsampled masks scored on the 200 oracle frames. Stages are skipped when done (resumable).

Usage:
    python benchmarks/attention_saliency.py [--work /tmp/attention_saliency]
        [--tasks dmc:cartpole-swingup ...] [--grids 16 8] [--steps 1000]
        [--out benchmarks/results]
Writes attention_saliency.json and .md under --out after every (task, grid).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from machine_info import measured_line, provenance

from saliency_rl.data.atomic import atomic_write_json, atomic_write_text
from saliency_rl.data.collect import collect
from saliency_rl.data.dataset import Dataset
from saliency_rl.models.attention_saliency import load_saliency_source
from saliency_rl.pretrain.attention_pretrain import AttentionPretrainConfig, pretrain_attention
from saliency_rl.saliency.annotations import AnnotationStore, annotate_with_oracle
from saliency_rl.saliency.fit import evaluate_predictor

DMC = ["dmc:cartpole-swingup", "dmc:walker-walk", "dmc:ball_in_cup-catch", "dmc:finger-spin"]
TEST_SIZE, TEST_FRAMES = 2000, 200  # benchmarks/saliency_predictors.py's test protocol


def test_set(task: str, work: Path) -> Dataset:
    path = work / task.replace(":", "_") / "test"
    if not (path / "meta.json").exists():
        dataset = collect(
            task, path, frames=TEST_SIZE, seed=1000, env_options={"preset": "visarl-dmc"},
            progress=False,
        )  # fmt: skip
        annotate_with_oracle(dataset, TEST_FRAMES, seed=1)
    return Dataset.open(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/tmp/attention_saliency")
    parser.add_argument("--tasks", nargs="+", default=DMC)
    parser.add_argument("--grids", type=int, nargs="+", default=[16, 8])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    work, out = Path(args.work), Path(args.out)
    results_file = out / "attention_saliency.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {"rows": {}}
    clicked = out / "saliency_predictors.json"
    reference = json.loads(clicked.read_text()) if clicked.exists() else {}
    for task in args.tasks:
        dataset = test_set(task, work)
        frames = AnnotationStore(dataset).annotated()
        for grid in args.grids:
            key = f"{task} grid {grid}"
            if key in results["rows"]:
                continue
            checkpoint = work / task.replace(":", "_") / f"attention_g{grid}_{args.steps}"
            started = time.perf_counter()
            if not (checkpoint / "config.json").exists():
                config = AttentionPretrainConfig(grid=grid, checkpoint_every=args.steps)
                resume = checkpoint.exists() and any(checkpoint.iterdir())
                pretrain_attention(
                    dataset.root, checkpoint, args.steps, config=config, resume=resume,
                    device="cpu", progress=False,
                )  # fmt: skip
            seconds = time.perf_counter() - started
            held = evaluate_predictor(load_saliency_source(checkpoint, "cpu"), dataset, frames)
            results["rows"][key] = {
                "task": task, "grid": grid, "steps": args.steps, "max_f_beta": held["max_f_beta"],
                "mae": held["mae"], "frames": held["frames"], "pretrain_seconds": round(seconds, 1),
            }  # fmt: skip
            results.update(
                provenance(
                    "python benchmarks/attention_saliency.py --tasks "
                    + " ".join(args.tasks)
                    + " --grids "
                    + " ".join(map(str, args.grids))
                    + f" --steps {args.steps}"
                )
            )
            atomic_write_json(results_file, results)
            atomic_write_text(out / "attention_saliency.md", markdown(results, reference))
            print(f"{key}: max F-beta {held['max_f_beta']:.3f} MAE {held['mae']:.4f}", flush=True)


def markdown(results: dict, reference: dict) -> str:
    clicked = {(r["task"], r["model"]): r for r in reference.get("runs", []) if isinstance(r, dict)}
    lines = [
        "# Saliency with no person: the attention module's maps against the oracle's",
        "",
        measured_line(results),
        "",
        "Protocol: benchmarks/saliency_predictors.py's test set per task (2,000 random-policy "
        "frames, seeds 1000+, visarl-dmc preset, 64x64; 200 oracle-clicked frames as the ground "
        "truth; max F-beta with beta² = 0.3, MAE). The attention module is pretrained on the "
        "same 2,000 frames' pairs with no labels (Adam 1e-3, batch 32, pairs 1-59 steps apart), "
        "its mask upsampled bilinearly to 64x64. The clicked U-Net was fitted on 10 oracle-"
        "clicked frames of other episodes.",
        "",
        "| task | mask grid | steps | max F-beta | MAE | clicked U-Net F-beta / MAE | pretraining s |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for row in results["rows"].values():
        unet = clicked.get((row["task"], "unet"))
        ref = f"{unet['max_f_beta']:.3f} / {unet['mae']:.4f}" if unet else "–"
        lines.append(
            f"| {row['task']} | {row['grid']} | {row['steps']} | {row['max_f_beta']:.3f} | "
            f"{row['mae']:.4f} | {ref} | {row['pretrain_seconds']:.0f} |"
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
