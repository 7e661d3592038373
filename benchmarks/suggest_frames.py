"""Fewer, better clicks (issue 25, item 2): a saliency predictor fitted on 10 frames that
``annotate --suggest`` chose (greedy k-center cover) against 10 evenly spread frames (the
default, ViSaRL's random-frame protocol), on the same episodes, clicked by the oracle.

The protocol of benchmarks/saliency_predictors.py: train on 2 random-policy episodes (seed 0,
preset visarl-dmc, 64x64), 10 clicked frames, the small U-Net and its default steps; max
F-beta and MAE on 200 oracle-clicked frames of 2,000 test frames (seeds 1000+). Both arms are
fitted here, one after the other, with the same seed. Resumable per (task, selection).

Usage:
    python benchmarks/suggest_frames.py [--work /tmp/saliency_bench] [--tasks dmc:finger-spin]
        [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from machine_info import measured_line, provenance
from saliency_predictors import data_options, prepare

from saliency_rl.data.atomic import atomic_write_json, atomic_write_text
from saliency_rl.data.collect import collect
from saliency_rl.data.dataset import Dataset
from saliency_rl.saliency.annotations import AnnotationStore, annotate_with_oracle
from saliency_rl.saliency.fit import evaluate_predictor, fit_predictor
from saliency_rl.saliency.predictor import SaliencyPredictor

CLICKS = 10


def suggested_train_set(task: str, work: Path) -> Dataset:
    """The default train set's episodes (2, seed 0), clicked on the suggested frames."""
    path = work / task.replace(":", "_") / "train_suggest"
    if not (path / "meta.json").exists():
        shutil.rmtree(path, ignore_errors=True)
        options, policy = data_options(task)
        dataset = collect(
            task, path, episodes=2, seed=0, policy=policy, env_options=options, progress=False
        )
        annotate_with_oracle(dataset, CLICKS, seed=0, suggest=True)
    return Dataset.open(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/saliency_bench"))
    parser.add_argument("--tasks", nargs="+", default=["dmc:finger-spin", "dmc:walker-walk"])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results_file = args.out / "suggest_frames.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {"rows": {}}
    for task in args.tasks:
        spread, test = prepare(task, args.work)
        for selection, train in (("spread", spread), ("suggest", None)):
            key = f"{task} {selection}"
            if key in results["rows"]:
                continue
            train = train or suggested_train_set(task, args.work)
            checkpoint = args.work / "predictors" / f"{task.replace(':', '_')}__{selection}"
            shutil.rmtree(checkpoint, ignore_errors=True)
            report = fit_predictor(
                train, checkpoint, model="unet", holdout_frames=[], progress=False
            )
            predictor = SaliencyPredictor.load(checkpoint, device="cpu")
            held = evaluate_predictor(predictor, test, AnnotationStore(test).annotated())
            results["rows"][key] = {
                "task": task, "selection": selection,
                "frames": AnnotationStore(train).annotated(),
                "max_f_beta": held["max_f_beta"], "mae": held["mae"],
                "train_seconds": round(report["train_seconds"], 1),
            }  # fmt: skip
            results.update(
                provenance("python benchmarks/suggest_frames.py --tasks " + " ".join(args.tasks))
            )
            atomic_write_json(results_file, results)
            atomic_write_text(args.out / "suggest_frames.md", markdown(results))
            print(f"{key}: max F-beta {held['max_f_beta']:.3f} MAE {held['mae']:.4f}", flush=True)


def markdown(results: dict) -> str:
    lines = [
        "# Fewer, better clicks: suggested frames against evenly spread ones",
        "",
        measured_line(results),
        "",
        "Protocol: benchmarks/saliency_predictors.py's (2 random-policy train episodes, seed 0, "
        "visarl-dmc preset, 64x64; 10 oracle-clicked frames; the small U-Net at its default "
        "steps; max F-beta, beta² = 0.3, and MAE on 200 oracle-clicked frames of 2,000 test "
        "frames, seeds 1000+). `spread`: one frame per equal slice of the frames (the default); "
        "`suggest`: `annotate --suggest`, greedy k-center on 8x8 thumbnails.",
        "",
        "| task | selection | max F-beta | MAE | train s |",
        "|---|---|---:|---:|---:|",
    ]
    for row in results["rows"].values():
        lines.append(
            f"| {row['task']} | {row['selection']} | {row['max_f_beta']:.3f} | "
            f"{row['mae']:.4f} | {row['train_seconds']:.0f} |"
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
