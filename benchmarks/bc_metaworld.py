"""Behaviour cloning with saliency on Meta-World: the analogue of ViSaRL's Table V.

ViSaRL's real-robot experiment (Liang, Thomason, Biyik; Table V) trains an LSTM behaviour
cloning policy on frozen MultiMAE features of a few demonstrations per task: RGB-only
features succeed in 14/40 trials, RGB + saliency features in 27/40. Here the same
comparison runs in simulation, so anyone can reproduce it:

1. demonstrations: ``--demos`` scripted-expert episodes per task (seeds 0..demos-1);
2. saliency: 10 frames per task clicked by the oracle (the simulator's salient points),
   a U-Net predictor fitted on them, every demo frame labelled with it;
3. encoders: one MAE (``rgb``) and one MultiMAE (``rgb`` + ``saliency``) pretrained on the
   demo frames of all tasks together (a small budget: this is a CPU);
4. behaviour cloning (``saliency_rl.algos.bc_trainer.train_bc``) per task x mode x seed on
   the cached features, evaluated closed-loop on new object and goal positions, clean and
   with a distractor.

Every stage is cached under ``--work`` and skipped when done, and every finished BC run is
reused, so the script can be killed and started again; the results files are rewritten
after every run, marked partial until the grid is complete.

Usage:
    nice -n 10 python benchmarks/bc_metaworld.py [--work /tmp/bc_metaworld] [--out benchmarks/results]
        [--episodes 50] [--seeds 3] [--stage prep|all]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from machine_info import cpu_model, package_versions

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from saliency_rl.data.atomic import atomic_write_json, atomic_write_text  # noqa: E402
from saliency_rl.data.collect import collect  # noqa: E402
from saliency_rl.data.dataset import Dataset  # noqa: E402
from saliency_rl.pretrain.multimae_pretrain import pretrain_multimae  # noqa: E402
from saliency_rl.saliency.annotations import AnnotationStore, annotate_with_oracle  # noqa: E402
from saliency_rl.saliency.fit import fit_predictor  # noqa: E402
from saliency_rl.saliency.label import label_dataset  # noqa: E402

TASKS = ("reach", "drawer-open", "faucet-open", "door-open")
# 64x64 frames as ViSaRL; action repeat 2 and 75 steps (150 simulator steps) keep episodes
# short on a CPU: the scripted expert succeeds within 20 (reach) to 45 (drawer-open) steps.
ENV_OPTIONS = {"image_size": 64, "action_repeat": 2, "episode_length": 75}
MODES = {"rgb": "mae_rgb", "rgb+saliency": "multimae_rgb_saliency"}
PAPER = {"rgb": (14, 40), "rgb+saliency": (27, 40)}  # ViSaRL Table V, successes / trials
ANNOTATED_FRAMES = 10


def log(message: str) -> None:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", flush=True)


# ---------------------------------------------------------------------- preparation
def demos(work: Path, task: str, count: int) -> Dataset:
    root = work / "demos" / task
    dataset = Dataset.open(root) if (root / "meta.json").exists() else None
    have = dataset.num_episodes if dataset else 0
    if have < count:
        log(f"collect {count - have} expert demos of {task}")
        dataset = collect(
            f"metaworld:{task}",
            root,
            episodes=count - have,
            policy="expert",
            seed=0,
            env_options=ENV_OPTIONS,
            progress=False,
        )
    return dataset


def saliency_labels(work: Path, task: str, dataset: Dataset, fit_steps: int) -> Path:
    """Oracle clicks on 10 frames -> U-Net predictor -> ``saliency`` field on every frame."""
    predictor = work / "predictors" / task
    if not (predictor / "model.safetensors").exists():
        if len(AnnotationStore(dataset).annotated()) < ANNOTATED_FRAMES:
            annotate_with_oracle(dataset, ANNOTATED_FRAMES, seed=0)
        log(f"fit the saliency predictor of {task} ({fit_steps} steps)")
        fit_predictor(
            dataset, predictor, steps=fit_steps, holdout_frames=[], device="cpu", progress=False
        )
    label_dataset(dataset, predictor, device="cpu", progress=False)
    return predictor


def pretrain_data(work: Path, datasets: dict[str, Dataset], saliency: bool = True) -> Dataset:
    """Every task's demo frames (and, with ``saliency``, labels) in one dataset, for one
    shared encoder. Frames first: the RGB-only encoder need not wait for the labels."""
    root = work / "pretrain_data"
    if (root / "meta.json").exists():
        combined = Dataset.open(root)
    else:
        first = next(iter(datasets.values()))
        combined = Dataset.create(
            root,
            env_spec="metaworld:" + "+".join(datasets),
            env_options=ENV_OPTIONS,
            fields={"rgb": first.fields["rgb"]},
        )
    index = 0
    for dataset in datasets.values():
        for episode in range(dataset.num_episodes):
            if index >= combined.num_episodes:
                combined.append_episode({"rgb": dataset.episode(episode, ["rgb"])["rgb"]})
            if saliency and not combined._field_path("saliency", index).exists():
                labels = dataset.episode(episode, ["saliency"])["saliency"]
                combined.write_field("saliency", index, labels)
            index += 1
    return combined


def encoders(
    work: Path, combined: Dataset | None, steps: int, batch: int, modes=tuple(MODES)
) -> dict[str, Path]:
    """The pretraining run of each mode (pretrained first when ``combined`` is given)."""
    out = {}
    for mode in modes:
        name = MODES[mode]
        modalities = ("rgb",) if mode == "rgb" else ("rgb", "saliency")
        run = work / name
        done = run / "checkpoints" / f"step_{steps:06d}"
        if combined is not None and not done.exists():
            log(f"pretrain {name} ({steps} steps x {batch})")
            pretrain_multimae(
                combined,
                run,
                modalities=modalities,
                steps=steps,
                batch_size=batch,
                seed=0,
                device="cpu",
                resume=(run / "checkpoints").exists(),
                progress=False,
                # ViSaRL's encoder; one decoder block instead of three, as the decoders do 80% of
                # the pretraining work (benchmarks/results/multimae.md) and are thrown away.
                model_overrides={"decoder_depth": 1},
                checkpoint_every=max(steps // 4, 1),
            )
        out[mode] = run
    return out


def features(
    work: Path, encoder_runs: dict[str, Path], predictors: dict[str, Path], tasks=TASKS
) -> None:
    """Cache each task's demo features per mode before its BC runs (one process per task)."""
    from saliency_rl.algos.bc_trainer import prepare_features

    for task in tasks:
        dataset = Dataset.open(work / "demos" / task)
        for mode, run in encoder_runs.items():
            predictor = predictors[task] if mode == "rgb+saliency" else None
            prepare_features(dataset, run, mode, predictor, "cpu", progress=False)
    log("features cached")


# ---------------------------------------------------------------------- behaviour cloning
def bc_run(work: Path, task: str, mode: str, seed: int, args, encoder: Path, predictor: Path):
    from saliency_rl.algos.bc import BCConfig, preset_config
    from saliency_rl.algos.bc_trainer import resume_bc, train_bc

    out = work / "bc" / f"{task}__{mode.replace('+', '_')}__{seed}"
    if (out / "eval.json").exists():
        return out
    config: BCConfig = preset_config(
        "visarl-bc",
        seed=seed,
        steps=args.bc_steps,
        eval_episodes=args.episodes,
        eval_every=0,
        checkpoint_every=max(args.bc_steps // 2, 1),
        log_every=100,
    )
    if (out / "config.json").exists():
        return resume_bc(out, progress=False)
    return train_bc(
        work / "demos" / task,
        encoder,
        config,
        mode=mode,
        predictor=predictor if mode == "rgb+saliency" else None,
        out=out,
        device="cpu",
        progress=False,
        eval_distractors=tuple(d for d in args.distractors if d != "clean"),
    )


def distractor_evals(work: Path, args, tasks) -> None:
    """Evaluate every finished run of ``tasks`` under each condition of ``args.distractors``
    that it has fewer than ``args.episodes`` episodes of (a second pass, so the clean grid
    finishes first; it also tops up runs evaluated on fewer episodes, ``clean`` included);
    writes RUN/eval_<condition>.json, which the report prefers to eval.json's figures."""
    from saliency_rl.algos.bc_policy import evaluate_bc, load_policy
    from saliency_rl.runs import read_json, write_json

    for seed in args.only_seeds or range(args.seeds):
        for task in tasks:
            for run in sorted((work / "bc").glob(f"{task}__*__{seed}")):
                if not (run / "eval.json").exists():
                    continue
                config = read_json(run / "config.json", "run")
                for distractor in args.distractors:
                    if evaluated_episodes(run, distractor) >= args.episodes:
                        continue
                    tick = time.perf_counter()
                    result = evaluate_bc(
                        load_policy(run, "cpu"),
                        config["env"],
                        config["env_options"],
                        args.episodes,
                        distractor=None if distractor == "clean" else distractor,
                    )
                    result["successes"] = [bool(e["success"]) for e in result.pop("per_episode")]
                    write_json(run / f"eval_{distractor}.json", result)
                    log(f"{run.name} {distractor}: {time.perf_counter() - tick:.0f} s")


def evaluated_episodes(run: Path, condition: str) -> int:
    """Episodes a finished run has been evaluated on under ``condition`` (0: none)."""
    extra = run / f"eval_{condition}.json"
    if extra.exists():
        return int(json.loads(extra.read_text())["episodes"])
    result = json.loads((run / "eval.json").read_text())
    found = (
        result["final"] if condition == "clean" else result.get("distractors", {}).get(condition)
    )
    return int(found["episodes"]) if found else 0


def summarise(work: Path, args, started: str) -> dict:
    """Every finished run's success rates, and the table of means over seeds."""
    runs = []
    for path in sorted((work / "bc").glob("*/eval.json")):
        result = json.loads(path.read_text())
        task, mode, seed = path.parent.name.split("__")
        mode = mode.replace("rgb_saliency", "rgb+saliency")
        final = dict(result["final"])
        if "successes" not in final:  # eval.json of runs made before the one format
            final["successes"] = [bool(e["success"]) for e in result.get("per_episode") or []]
        conditions = {"clean": final}
        conditions.update(result.get("distractors", {}))
        for extra in path.parent.glob("eval_*.json"):  # written by the distractors stage
            conditions[extra.stem.removeprefix("eval_")] = json.loads(extra.read_text())
        for condition, final in conditions.items():
            runs.append(
                {
                    "task": task,
                    "mode": mode,
                    "seed": int(seed),
                    "condition": condition,
                    "success_rate": final["success_rate"],
                    "episodes": final["episodes"],
                    "successes": final.get("successes") or None,
                }
            )
    expected = len(TASKS) * len(MODES) * args.seeds
    finished = len({(r["task"], r["mode"], r["seed"]) for r in runs})
    return {
        "benchmark": "bc_metaworld",
        "partial": finished < expected,
        "finished_runs": finished,
        "expected_runs": expected,
        "started": started,
        "updated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "settings": {
            "tasks": TASKS,
            "env_options": ENV_OPTIONS,
            "demos_per_task": args.demos,
            "annotated_frames": ANNOTATED_FRAMES,
            "predictor_fit_steps": args.fit_steps,
            "pretrain_steps": args.pretrain_steps,
            "pretrain_batch": args.pretrain_batch,
            "bc_steps": args.bc_steps,
            "eval_episodes": args.episodes,
            "seeds": args.seeds,
            "distractors": args.distractors,
        },
        "machine": machine(),
        "paper_table_v": PAPER,
        "predictors": {task: _predictor_report(work / "predictors" / task) for task in TASKS},
        "runs": runs,
    }


def _predictor_report(directory: Path) -> dict | None:
    """Training-frame F-beta and MAE of a task's predictor (all 10 frames train it)."""
    path = directory / "report.json"
    if not path.exists():
        return None
    report = json.loads(path.read_text())
    metrics = report.get("train_metrics") or {}
    return {
        "steps": report.get("steps"),
        "seconds": round(report.get("train_seconds") or 0.0),
        "train_max_f_beta": metrics.get("max_f_beta"),
        "train_mae": metrics.get("mae"),
    }


def machine() -> dict:
    packages = ("saliency-rl", "torch", "numpy", "mujoco", "metaworld")
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "versions": package_versions(packages),
    }


def _matched(rows: list[dict]) -> tuple[int, list[tuple[int, int]]]:
    """K, the fewest episodes of any run, and each run's (successes, K) on its first K.

    Every run is evaluated on the same episode seeds, so the first K episodes of two runs
    are the same object and goal positions: runs with fewer episodes are compared on those.
    """
    k = min(r["episodes"] for r in rows)
    counts = []
    for r in rows:
        if r.get("successes") is not None:
            counts.append((int(sum(r["successes"][:k])), k))
        else:  # only a rate: scale it (exact when the run has K episodes)
            counts.append((round(r["success_rate"] * k), k))
    return k, counts


def table(result: dict) -> str:
    """Markdown: successes / trials per task, mode and condition (and the mean over seeds)."""
    rows = result["runs"]
    conditions = sorted({r["condition"] for r in rows}, key=lambda c: (c != "clean", c))
    lines = []
    for condition in conditions:
        here = [r for r in rows if r["condition"] == condition]
        k, matched = _matched(here)
        lines += [
            f"### {condition} (first {k} evaluation episodes of every run)",
            "",
            "| task | MultiMAE rgb | MultiMAE rgb+saliency | seed ids (rgb / rgb+s) | ratio (goal >= 1.5x) |",
            "|---|---:|---:|---|---:|",
        ]
        for task in [*TASKS, "all"]:
            cells, counts, rates = [], [], {}
            for mode in MODES:
                picked = [r for r in here if r["mode"] == mode and task in ("all", r["task"])]
                if not picked:
                    cells.append("not run")
                    counts.append("-")
                    rates[mode] = None
                    continue
                pairs = [matched[here.index(r)] for r in picked]
                wins, trials = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
                rates[mode] = wins / trials
                seeds = sorted({r["seed"] for r in picked})
                cells.append(f"{wins}/{trials} ({wins / trials:.0%})")
                counts.append(",".join(str(x) for x in seeds))
            ratio = (
                f"{rates['rgb+saliency'] / rates['rgb']:.2f}x"
                if rates.get("rgb") and rates.get("rgb+saliency") is not None
                else "-"
            )
            name = "**all tasks**" if task == "all" else task
            lines.append(f"| {name} | {cells[0]} | {cells[1]} | {' / '.join(counts)} | {ratio} |")
        lines += ["", per_seed_line(here, matched), ""]
    return "\n".join(lines)


def per_seed_line(rows: list[dict], matched: list[tuple[int, int]]) -> str:
    """Each mode's success over all tasks seed by seed, with mean and std over the seeds."""
    parts = []
    for mode in MODES:
        by_seed: dict[int, list[int]] = {}
        for row, (wins, trials) in zip(rows, matched, strict=True):
            if row["mode"] == mode:
                tally = by_seed.setdefault(row["seed"], [0, 0])
                tally[0], tally[1] = tally[0] + wins, tally[1] + trials
        rates = [100 * w / t for _, (w, t) in sorted(by_seed.items()) if t]
        if rates:
            spread = statistics.pstdev(rates) if len(rates) > 1 else 0.0
            each = ", ".join(f"{r:.0f}%" for r in rates)
            parts.append(f"{mode} {statistics.mean(rates):.0f} ± {spread:.0f}% ({each})")
    return "All tasks, seed by seed (mean ± std over seeds): " + "; ".join(parts) + "."


def paper_comparison(result: dict) -> str:
    """Pooled successes over tasks (clean, matched episodes) beside ViSaRL's Table V."""
    here = [r for r in result["runs"] if r["condition"] == "clean"]
    (a, b), (c, d) = PAPER["rgb"], PAPER["rgb+saliency"]
    lines = [
        f"- ViSaRL Table V (real robot, 4 tasks x 10 trials): MultiMAE rgb {a}/{b} ({a / b:.0%}), "
        f"rgb+saliency {c}/{d} ({c / d:.0%}): {c / d / (a / b):.2f}x."
    ]
    if here:
        k, matched = _matched(here)
        pooled = {}
        for mode in MODES:
            pairs = [matched[i] for i, r in enumerate(here) if r["mode"] == mode]
            pooled[mode] = (sum(p[0] for p in pairs), sum(p[1] for p in pairs))
        (wa, ta), (wb, tb) = pooled["rgb"], pooled["rgb+saliency"]
        if ta and tb:
            ratio = (wb / tb) / (wa / ta) if wa else float("inf")
            verdict = "met" if ratio >= 1.5 else f"missed (by {1.5 - ratio:.2f}x)"
            lines.append(
                f"- here (simulation, clean, first {k} episodes of every run): rgb {wa}/{ta} "
                f"({wa / ta:.0%}), rgb+saliency {wb}/{tb} ({wb / tb:.0%}): {ratio:.2f}x; "
                f"goal >= 1.5x {verdict}."
            )
    return "\n".join(lines)


def notes(out: Path) -> str:
    """Hand-written discussion of the figures, kept beside the results (if any)."""
    path = out / "bc_metaworld.notes.md"
    return "\n" + path.read_text() if path.exists() else ""


def predictor_text(result: dict) -> str:
    parts = []
    for task, report in result.get("predictors", {}).items():
        if report and report.get("train_max_f_beta") is not None:
            parts.append(f"{task} {report['train_max_f_beta']:.2f} / {report['train_mae']:.3f}")
    return ", ".join(parts) or "not trained yet"


def reductions(result: dict) -> str:
    """What differs from the issue's grid (50 rollouts, 3 seeds, every run finished)."""
    s = result["settings"]
    notes = []
    if s["eval_episodes"] < 50:
        notes.append(
            f"- {s['eval_episodes']} evaluation episodes per run and condition instead of 50: "
            "every rollout step renders a frame (about 40 ms on this shared CPU) and runs the "
            "frozen MultiMAE (and, for rgb+saliency, the U-Net) on it."
        )
    if result["partial"]:
        notes.append(
            f"- only {result['finished_runs']} of {result['expected_runs']} runs finished "
            "before the deadline; the seeds column of the table says which."
        )
    notes.append(
        f"- episodes are {s['env_options']['episode_length']} steps at action repeat "
        f"{s['env_options']['action_repeat']} (150 simulator steps, not Meta-World's 500), "
        f"the encoders are pretrained for {s['pretrain_steps']} steps only (ViSaRL pretrains "
        "far longer, on far more frames), with one decoder block instead of three: a CPU budget."
    )
    notes.append(
        "- distractors change colours of the table, floor and walls (our own set), not the "
        "distractor objects of the paper's real-robot tasks."
    )
    return "\n".join(notes)


def write_results(out: Path, result: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "bc_metaworld.json", result)
    s = result["settings"]
    status = (
        f"**PARTIAL: {result['finished_runs']} of {result['expected_runs']} (task x mode x seed) "
        "runs finished; see 'What was reduced' below.**"
        if result["partial"]
        else f"Complete: {result['finished_runs']} runs."
    )
    m = result["machine"]
    paper = ", ".join(f"{k} {a}/{b} ({a / b:.0%})" for k, (a, b) in PAPER.items())
    text = f"""# Behaviour cloning with saliency on Meta-World (ViSaRL Table V analogue)

{status}

- updated: {result["updated"]} (started {result["started"]})
- command: `{result["command"]}`
- machine: {m["cpu"]}, {m["cores"]} cores, no GPU; Python {m["python"]}; torch threads {m["torch_threads"]}; load average {m["load_average"]} (the 2 cores were shared with other jobs)
- versions: {", ".join(f"{k} {v}" for k, v in m["versions"].items())}
- tasks: {", ".join(s["tasks"])}; env options {s["env_options"]}
- data: {s["demos_per_task"]} scripted-expert demonstrations per task (seeds 0..{s["demos_per_task"] - 1}); saliency: U-Net fitted for {s["predictor_fit_steps"]} steps on {s["annotated_frames"]} oracle-clicked frames per task, labelling every demo frame
- saliency predictors (F-beta / MAE on their own 10 training frames; no frames held out): {predictor_text(result)}
- encoders: ViSaRL-size MultiMAE encoder (depth 4, width 256; 1 decoder block) pretrained {s["pretrain_steps"]} steps x {s["pretrain_batch"]} frames on all demo frames: `rgb` (MAE) and `rgb+saliency`; frozen
- policy: preset visarl-bc, {s["bc_steps"]} gradient steps; evaluation: {s["eval_episodes"]} closed-loop episodes per run on new object/goal positions (seeds disjoint from the demos'), success = ever succeeded in the episode
- seeds: {s["seeds"]}; conditions: {", ".join(s["distractors"])} (our own distractor sets, saliency_rl.envs.distractors)
- paper (real robot, Table V): {paper}; goal: rgb+saliency >= 1.5x rgb

## Successes / trials (pooled over tasks and seeds where a row says all)

{table(result)}
## Comparison with the paper

{paper_comparison(result)}

## What was reduced, and why

{reductions(result)}
{notes(out)}"""
    atomic_write_text(out / "bc_metaworld.md", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bc_metaworld"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--demos", type=int, default=10)
    parser.add_argument("--fit-steps", type=int, default=500)
    parser.add_argument("--pretrain-steps", type=int, default=300)
    parser.add_argument("--pretrain-batch", type=int, default=32)
    parser.add_argument("--bc-steps", type=int, default=2000)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--distractors", nargs="+", default=["clean", "color_hard"])
    parser.add_argument(
        "--only-seeds",
        type=int,
        nargs="+",
        help="run only these seeds (several processes can share the grid)",
    )
    parser.add_argument(
        "--stage",
        choices=("all", "saliency", "encoder", "features", "bc", "distractors", "report"),
        default="all",
    )
    parser.add_argument("--tasks", nargs="+", choices=TASKS, help="only these tasks")
    parser.add_argument("--modes", nargs="+", choices=tuple(MODES), help="only these modes")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    tasks = args.tasks or list(TASKS)
    modes = args.modes or list(MODES)
    tick = time.perf_counter()
    stages = {"saliency", "encoder", "features", "bc"} if args.stage == "all" else {args.stage}
    predictors = {task: work / "predictors" / task for task in TASKS}
    if "saliency" in stages:  # one process per task can run this stage
        for task in tasks:
            saliency_labels(work, task, demos(work, task, args.demos), args.fit_steps)
    combined = None
    if "encoder" in stages:  # one process per mode can run this stage
        datasets = {t: Dataset.open(work / "demos" / t) for t in TASKS}
        combined = pretrain_data(work, datasets, saliency="rgb+saliency" in modes)
    encoder_runs = encoders(work, combined, args.pretrain_steps, args.pretrain_batch, modes)
    if "features" in stages or "bc" in stages:  # writes the task's dataset: one process a task
        features(work, encoder_runs, predictors, tasks)
    log(f"stages {sorted(stages)} before bc done in {time.perf_counter() - tick:.0f} s")
    if args.stage == "report":  # rewrite the results files from the finished runs
        write_results(args.out, summarise(work, args, started))
        return
    if args.stage == "distractors":
        distractor_evals(work, args, tasks)
        write_results(args.out, summarise(work, args, started))
        return
    if "bc" not in stages:
        return
    # Seed-major order: the first seed of every task and mode finishes first.
    for seed in args.only_seeds or range(args.seeds):
        for task in tasks:
            for mode in modes:
                tick = time.perf_counter()
                bc_run(work, task, mode, seed, args, encoder_runs[mode], predictors[task])
                log(f"bc {task} {mode} seed {seed}: {time.perf_counter() - tick:.0f} s")
                write_results(args.out, summarise(work, args, started))


if __name__ == "__main__":
    main()
