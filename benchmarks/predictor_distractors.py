"""The clicked saliency predictor on distracted frames (issue 28, item 1, the "before").

A U-Net fitted on 10 oracle-clicked clean frames (benchmarks/suggest_frames.py's ``spread``
arm: benchmarks/saliency_predictors.py's protocol) is scored on the test episodes of that
protocol (2,000 random-policy frames, seeds 1000+, preset visarl-dmc, 64x64) rendered clean
and under each distractor mode of --modes (our own sets, saliency_rl.envs.distractors, not
DMC-GB's videos), the oracle's clicks on 200 frames as the ground truth: max F-beta
(beta² = 0.3) and MAE. Resumable per (task, mode).

Usage:
    python benchmarks/predictor_distractors.py [--work /tmp/saliency_bench]
        [--tasks dmc:finger-spin dmc:walker-walk] [--modes color_hard video_hard]
        [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from machine_info import measured_line, provenance
from saliency_predictors import TEST_FRAMES, TEST_SIZE, prepare

from saliency_rl.data.atomic import atomic_write_json, atomic_write_text
from saliency_rl.data.collect import collect
from saliency_rl.data.dataset import Dataset
from saliency_rl.saliency.annotations import AnnotationStore, annotate_with_oracle
from saliency_rl.saliency.fit import evaluate_predictor
from saliency_rl.saliency.predictor import SaliencyPredictor


def distracted_test_set(task: str, mode: str, work: Path) -> Dataset:
    if mode == "clean":
        return prepare(task, work)[1]
    path = work / task.replace(":", "_") / f"test_{mode}"
    if not (path / "meta.json").exists():
        dataset = collect(
            task, path, frames=TEST_SIZE, seed=1000,
            env_options={"preset": "visarl-dmc", "distractor": mode}, progress=False,
        )  # fmt: skip
        annotate_with_oracle(dataset, TEST_FRAMES, seed=1)
    return Dataset.open(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/saliency_bench"))
    parser.add_argument("--tasks", nargs="+", default=["dmc:finger-spin", "dmc:walker-walk"])
    parser.add_argument("--modes", nargs="+", default=["clean", "color_hard", "video_hard"])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results_file = args.out / "predictor_distractors.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {"rows": {}}
    for task in args.tasks:
        checkpoint = args.work / "predictors" / f"{task.replace(':', '_')}__spread"
        predictor = SaliencyPredictor.load(checkpoint, device="cpu")
        for mode in args.modes:
            key = f"{task} {mode}"
            if key in results["rows"]:
                continue
            test = distracted_test_set(task, mode, args.work)
            held = evaluate_predictor(predictor, test, AnnotationStore(test).annotated())
            results["rows"][key] = {
                "task": task, "mode": mode, "max_f_beta": held["max_f_beta"], "mae": held["mae"],
            }  # fmt: skip
            results.update(
                provenance(
                    "python benchmarks/predictor_distractors.py --tasks "
                    + " ".join(args.tasks)
                    + " --modes "
                    + " ".join(args.modes)
                )
            )
            atomic_write_json(results_file, results)
            atomic_write_text(args.out / "predictor_distractors.md", markdown(results))
            print(f"{key}: max F-beta {held['max_f_beta']:.3f} MAE {held['mae']:.4f}", flush=True)


def markdown(results: dict) -> str:
    lines = [
        "# The clicked saliency predictor on distracted frames (before robustness training)",
        "",
        measured_line(results),
        "",
        "The small U-Net fitted on 10 oracle-clicked clean frames (benchmarks/suggest_frames.py, "
        "`spread`), scored on the same 2,000 test frames (seeds 1000+, visarl-dmc, 64x64) "
        "rendered clean and under our distractor sets (not DMC-GB's), 200 oracle-clicked "
        "frames each: max F-beta (beta² = 0.3) and MAE.",
        "",
        "| task | frames | max F-beta | MAE |",
        "|---|---|---:|---:|",
    ]
    for row in results["rows"].values():
        lines.append(
            f"| {row['task']} | {row['mode']} | {row['max_f_beta']:.3f} | {row['mae']:.4f} |"
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
