"""SAC learning grid: (task x encoder x seed) at a budget -> a table of final returns / success.

Every cell is one ``saliency-rl train sac`` run in its own process (one torch thread,
``nice``), resumable: a cell whose run has eval.json is done and skipped; one with a
checkpoint but no eval.json is resumed (``--resume``); one killed before its first
checkpoint is moved aside and started again. The table is written from the runs'
eval.json (finished runs) and, clearly marked, from the last evaluation in metrics.csv of
runs that have not finished (``--report`` alone writes it without training).

    python benchmarks/sac_learning.py --tasks dmc:cartpole-swingup --frames 100000 \\
        --cells multimae:rgb:3 multimae:rgb+saliency:3 cnn:rgb:1 cnn:rgbs:1 \\
        --predictor PRED --multimae-rgb MAE_RGB --multimae-rgb-saliency MAE_RGBS --jobs 2

A cell is ``encoder:mode:seeds`` (optionally ``:aux``, e.g. ``cnn:rgb:1:rad``). The budget
``--frames`` counts simulator steps (the DMC 100k benchmark's unit): agent steps = frames /
action repeat of the env preset (cartpole 8 in visarl-dmc and dmc-100k).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from run_dirs import set_aside_unstarted

RESULTS = Path(__file__).parent / "results"
# Published DMC 100k-step scores (mean), for the table's reference column.
ANCHORS = {
    "dmc:cartpole-swingup": "RAD 759, DrQ 759, CURL 582 (published 100k-step scores)",
}
SALIENCY_MODES = {"saliency", "rgb_x_saliency", "rgbs", "rgb+saliency"}


def action_repeat(task: str, preset: str) -> int:
    from saliency_rl.algos.sac_trainer import env_options_for
    from saliency_rl.envs import parse_spec
    from saliency_rl.envs.presets import preset_options

    options = env_options_for(task, preset, {})
    if "preset" not in options:
        return 1
    return int(preset_options(options["preset"], parse_spec(task)).get("action_repeat", 1))


def cells(args: argparse.Namespace) -> list[dict]:
    """Every run of the grid, seed 0 of every cell first: a grid cut short still compares."""
    out = []
    for task in args.tasks:
        steps = max(1, args.frames // action_repeat(task, args.preset))
        for cell in args.cells:
            parts = cell.split(":")
            encoder, mode, seeds = parts[0], parts[1], int(parts[2])
            aux = parts[3] if len(parts) > 3 else "none"
            for seed in range(seeds):
                label = f"{'sac' if aux == 'none' else aux}-{encoder}-{mode}"
                name = f"{task.replace(':', '-')}__{label}__{seed}"
                out.append(
                    dict(task=task, encoder=encoder, mode=mode, aux=aux, seed=seed,
                         steps=steps, label=label, run=Path(args.runs) / name)
                )  # fmt: skip
    return sorted(out, key=lambda c: c["seed"])


def command(cell: dict, args: argparse.Namespace) -> list[str]:
    argv = [sys.executable, "-m", "saliency_rl.cli", "train", "sac", "--env", cell["task"]]
    argv += ["--encoder", cell["encoder"], "--saliency-mode", cell["mode"], "--aux", cell["aux"]]
    argv += ["--preset", args.preset, "--seed", str(cell["seed"])]
    argv += ["--total-steps", str(cell["steps"]), "--out", str(cell["run"])]
    argv += ["--threads", "1", "--no-progress", "--device", "cpu"]
    argv += ["--eval-every", str(args.eval_every), "--eval-episodes", str(args.eval_episodes)]
    argv += ["--checkpoint-every", str(args.checkpoint_every), "--log-every", "500"]
    for flag, value in (
        ("--replay-size", args.replay_size),
        ("--batch-size", args.batch_size),
        ("--hidden-dim", args.hidden_dim),
        ("--init-steps", args.init_steps),
        ("--frame-stack", args.frame_stack),
    ):
        if value is not None:
            argv += [flag, str(value)]  # fmt: skip
    if cell["mode"] in SALIENCY_MODES:
        argv += ["--predictor", args.predictor]
    if cell["encoder"] == "multimae":
        ckpt = args.multimae_rgb if cell["mode"] == "rgb" else args.multimae_rgb_saliency
        argv += ["--encoder-checkpoint", ckpt]
    if has_checkpoint(cell["run"]):
        argv.append("--resume")
    return ["nice", "-n", "10", *argv]


def has_checkpoint(run: Path) -> bool:
    """Whether a run has a checkpoint to ``--resume`` from."""
    return (run / "checkpoints" / "latest").exists()


def train(todo: list[dict], args: argparse.Namespace) -> None:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS="1")
    running: list[tuple[dict, subprocess.Popen]] = []
    Path(args.logs).mkdir(parents=True, exist_ok=True)
    queue = list(todo)
    while queue or running:
        while queue and len(running) < args.jobs:
            cell = queue.pop(0)
            run = cell["run"]
            if (run / "config.json").exists() and not has_checkpoint(run):
                set_aside_unstarted(run)  # killed before its first checkpoint
            argv = command(cell, args)
            log = Path(args.logs) / f"{cell['run'].name}.log"
            print(f"start {shlex.join(argv)}", flush=True)
            running.append((cell, subprocess.Popen(argv, env=env, stdout=log.open("a"),
                                                   stderr=subprocess.STDOUT)))  # fmt: skip
        time.sleep(5)
        for item in list(running):
            if item[1].poll() is not None:
                running.remove(item)
                print(f"done {item[0]['run'].name} (exit {item[1].returncode})", flush=True)


def final_of(cell: dict) -> dict | None:
    """The final evaluation of a finished run, or the last evaluation of an unfinished one."""
    run = cell["run"]
    if (run / "eval.json").exists():
        final = json.loads((run / "eval.json").read_text())["final"]
        return {**final, "finished": True}
    if not (run / "metrics.csv").exists():
        return None
    with (run / "metrics.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["eval_return_mean"]]
    if not rows:
        return None
    last = rows[-1]
    result = {"step": int(last["step"]), "return_mean": float(last["eval_return_mean"]),
              "finished": False}  # fmt: skip
    if last.get("eval_success_rate"):
        result["success_rate"] = float(last["eval_success_rate"])
    return result


def curve_of(cell: dict) -> dict[int, float]:
    """Every evaluation of a run so far: {agent step: mean return}."""
    path = cell["run"] / "metrics.csv"
    if not path.exists():
        return {}
    with path.open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["eval_return_mean"]]
    return {int(r["step"]): float(r["eval_return_mean"]) for r in rows}


def curve_table(groups: dict[tuple[str, str], list[dict]]) -> tuple[list[str], list[dict]]:
    """Markdown rows of mean ± std return over seeds at every evaluation step, and the data.

    A step's cell averages the runs that have reached it, with their count when some have
    not, so a grid cut short still shows the curves it has.
    """
    curves = {key: [curve_of(c) for c in members] for key, members in groups.items()}
    steps = sorted({s for runs in curves.values() for run in runs for s in run})
    if not steps:
        return [], []
    lines = [
        "| task | method | " + " | ".join(f"{s:,}" for s in steps) + " |",
        "|---|---|" + "---|" * len(steps),
    ]
    data = []
    for (task, label), runs in curves.items():
        cells = []
        for step in steps:
            values = [run[step] for run in runs if step in run]
            data.append({"task": task, "method": label, "step": step, "returns": values})
            if not values:
                cells.append("-")
                continue
            text = f"{statistics.mean(values):.0f} ± {statistics.pstdev(values):.0f}"
            cells.append(text if len(values) == len(runs) else f"{text} (n={len(values)})")
        lines.append(f"| {task} | {label} | " + " | ".join(cells) + " |")
    return lines, data


def reached(cell: dict) -> int:
    """The agent step of a run's latest checkpoint (0 if it has none)."""
    config = cell["run"] / "checkpoints" / "latest" / "config.json"
    return int(json.loads(config.read_text())["step"]) if config.exists() else 0


def report(all_cells: list[dict], args: argparse.Namespace) -> None:
    from saliency_rl.data.atomic import atomic_write_json, atomic_write_text

    groups: dict[tuple[str, str], list[dict]] = {}
    for cell in all_cells:
        groups.setdefault((cell["task"], cell["label"]), []).append(cell)
    lines, table = [], []
    for (task, label), members in groups.items():
        finals = [(c, final_of(c)) for c in members]
        done = [f for _, f in finals if f is not None and f.get("finished")]
        returns = [f["return_mean"] for f in done]
        success = [f["success_rate"] for f in done if "success_rate" in f]
        finished = sum(bool(f.get("finished")) for f in done)
        steps = [f.get("step") for f in done]
        entry = {
            "task": task,
            "method": label,
            "seeds": len(members),
            "evaluated": len(done),
            "finished": finished,
            "agent_steps_target": members[0]["steps"],
            "agent_steps_reached": steps,
            "returns": returns,
            "return_mean": statistics.mean(returns) if returns else None,
            "return_std": statistics.pstdev(returns)
            if len(returns) > 1
            else 0.0
            if returns
            else None,
            "success_rate_mean": statistics.mean(success) if success else None,
        }
        table.append(entry)
        ret = (f"{entry['return_mean']:.1f} ± {entry['return_std']:.1f}"
               if returns else "-")  # fmt: skip
        succ = f"{entry['success_rate_mean']:.2f}" if success else "-"
        unfinished = [reached(c) for c, f in finals if not (f and f.get("finished"))]
        status = f"{finished}/{len(members)} finished"
        if unfinished:  # the table counts only finished runs' final evaluations
            status = f"**{status}; not finished (agent step reached of {members[0]['steps']}): {unfinished}**"
        entry["unfinished_steps_reached"] = unfinished
        lines.append(f"| {task} | {label} | {ret} | {succ} | {status} |")
    curve_lines, curve_data = curve_table(groups)
    result = {
        "benchmark": "sac_learning",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python " + shlex.join(sys.argv),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "load_average": os.getloadavg(),
        "frames_budget": args.frames,
        "preset": args.preset,
        "table": table,
        "curves": curve_data,
        "anchors": ANCHORS,
        "note": args.note,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out.with_suffix(".json"), result)
    when = (
        f"every {args.eval_every} agent steps and at the end" if args.eval_every else "at the end"
    )
    anchors = "\n".join(f"- {task}: {text}" for task, text in ANCHORS.items())
    md = f"""# SAC learning grid: final returns (mean ± std over seeds)

Budget: {args.frames} simulator frames per run (agent steps = frames / action repeat),
SAC preset `{args.preset}`, {args.frame_stack or 1} stacked frame(s), random steps
{args.init_steps if args.init_steps is not None else "of the preset"}, evaluation:
{args.eval_episodes} deterministic episodes {when}. Std is over seeds (0 with one seed).
Only finished runs count in a row; runs that had not finished are listed with the step
they reached.

| task | method | return | success | runs |
|---|---|---|---|---|
{chr(10).join(lines)}

Evaluation return against agent steps (mean ± std over the seeds that reached the step;
n = how many, where not all):

{chr(10).join(curve_lines) or "(no evaluations yet)"}

Published anchors at 100k frames:
{anchors}

{args.note}

Machine: {platform.platform()}, {os.cpu_count()} CPUs shared with other jobs (load average
{os.getloadavg()[0]:.1f} when this table was written). Date: {result["date"]}.

Command: `{result["command"]}`
"""
    atomic_write_text(out.with_suffix(".md"), md)
    print(md)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["dmc:cartpole-swingup"])
    parser.add_argument("--cells", nargs="+", required=True, help="encoder:mode:seeds[:aux]")
    parser.add_argument("--frames", type=int, default=100_000, help="simulator frames per run")
    parser.add_argument("--preset", default="visarl")
    parser.add_argument("--predictor", help="saliency predictor checkpoint")
    parser.add_argument("--multimae-rgb", help="RGB-only MultiMAE run (mode rgb)")
    parser.add_argument("--multimae-rgb-saliency", help="RGB+saliency MultiMAE run")
    parser.add_argument("--eval-every", type=int, default=2500, help="agent steps")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--checkpoint-every", type=int, default=1000)
    parser.add_argument("--replay-size", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--hidden-dim", type=int)
    parser.add_argument("--init-steps", type=int)
    parser.add_argument("--frame-stack", type=int, help="frames per observation (env default 1)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once")
    parser.add_argument("--runs", default="runs/sac_learning", help="where the runs go")
    parser.add_argument("--logs", default="/tmp/sac_learning_logs")
    parser.add_argument("--out", default=str(RESULTS / "sac_learning"))
    parser.add_argument("--note", default="", help="text for the results file (reductions...)")
    parser.add_argument("--report", action="store_true", help="only write the table")
    args = parser.parse_args()
    all_cells = cells(args)
    if not args.report:
        todo = [c for c in all_cells if not (c["run"] / "eval.json").exists()]
        train(todo, args)
    report(all_cells, args)


if __name__ == "__main__":
    main()
