"""The DMC-100k benchmark of the ``drq`` preset: 4 tasks x 5 seeds x 100k environment frames.

Every run is an ordinary ``saliency-rl train sac --preset drq`` run (84x84 frames, 3 stacked,
action repeat per task from the env preset dmc-100k: cartpole 8, finger 2, walker 2,
ball_in_cup 4), started as a subprocess with one torch thread, ``--jobs`` side by side,
evaluated on 10 deterministic episodes every 10k frames and at the end. Runs go in
*stages*: every run is brought to ``--stage-frames``, then 2 x stage, ... up to
``--frames``, seed 0 of every task first, each stage a ``--resume --total-steps`` of the
run; the default stage is the whole budget, so seeds finish one after the other. Rerunning
continues: a run that has reached the stage (eval.json) is skipped, one with a checkpoint
resumes from it, one killed before its first checkpoint is kept aside (run_dirs.py) and
starts again.

The script times each process it starts (wall clock, and CPU time from the kernel's
rusage) into ``RUNS/_timing/<run>.json``; a process killed with the script counts up to its
last checkpoint. From those and the runs' files it writes ``dmc100k.json`` and
``dmc100k.md`` (and ``dmc100k.png`` where matplotlib is installed): per task mean ± std and
IQM with a 95 % stratified-bootstrap interval (``experiments.stats``) of the final
evaluations beside the published 100k-frame numbers, per run wall time, CPU time, updates/s
and the precision ``auto`` chose, the minutes each cartpole-swingup seed needed to first
evaluate at 700 or more, and return against wall-clock time.

    python benchmarks/dmc100k.py --jobs 2 --prune-finished     # the benchmark
    python benchmarks/dmc100k.py --report                      # only the tables
    python benchmarks/dmc100k.py --smoke                       # 2k frames, 1 seed, temp dirs
    python benchmarks/dmc100k.py --jobs 2 --sac-args "--batch-size 128"   # a reduced setting
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine_info import cpu_model, package_versions
from run_dirs import set_aside_unstarted
from sac_learning import action_repeat, has_checkpoint

RESULTS = Path(__file__).parent / "results"
PRESET = "drq"
TASKS = ("cartpole-swingup", "finger-spin", "walker-walk", "ball_in_cup-catch")
# Published means at 100k environment frames (PlaNet benchmark): DrQ (Kostrikov et al. 2021,
# Table 1), CURL (Srinivas et al. 2020, Table 1), pixel SAC (as reported in the DrQ and CURL
# tables), DrQ-v2 (Yarats et al. 2021, its released curves read at 100k frames), and the
# best published 100k-frame number per task (the stretch target).
PUBLISHED = {
    "DrQ": {"cartpole-swingup": 759, "finger-spin": 901, "walker-walk": 612,
            "ball_in_cup-catch": 913},
    "CURL": {"cartpole-swingup": 582, "finger-spin": 767, "walker-walk": 403,
             "ball_in_cup-catch": 769},
    "pixel SAC": {"cartpole-swingup": 419, "finger-spin": 179, "walker-walk": 42,
                  "ball_in_cup-catch": 312},
    "DrQ-v2": {"cartpole-swingup": 626, "finger-spin": 325, "walker-walk": 170,
               "ball_in_cup-catch": 359},
    "best published": {"cartpole-swingup": 851, "finger-spin": 994, "walker-walk": 869,
                       "ball_in_cup-catch": 971},
}  # fmt: skip
TIME_TO_SCORE = ("cartpole-swingup", 700.0, 30.0)  # task, return, target minutes on 1 core
WALKER_TARGET_H = 2.0
OBS_BYTES = 9 * 84 * 84  # one stored observation: 3 stacked uint8 84x84 RGB frames


# ---------------------------------------------------------------------- the runs
def run_path(args: argparse.Namespace, task: str, seed: int, mode: str = "rgb") -> Path:
    """``TASK__drq__SEED`` for DrQ itself (``rgb``), ``TASK__drq-MODE__SEED`` for a saliency
    input mode on the same learner."""
    return Path(args.runs) / f"{task}__{PRESET}{'' if mode == 'rgb' else '-' + mode}__{seed}"


def label(task: str, mode: str) -> str:
    return task if mode == "rgb" else f"{task} ({mode})"


def predictor_for(args: argparse.Namespace, task: str) -> str:
    """The saliency predictor checkpoint given for the task (``--predictor TASK=PATH``)."""
    for item in args.predictor:
        name, _, path = item.partition("=")
        if name == task:
            return path
    raise SystemExit(f"--modes {' '.join(args.modes)} need a saliency predictor per task: "
                     f"give --predictor {task}=PATH (benchmarks/predictor_distractors.py "
                     "fits them)")  # fmt: skip


def steps_for(task: str, frames: int) -> int:
    return max(1, frames // action_repeat(f"dmc:{task}", PRESET))


def reached(path: Path) -> int:
    """Agent steps of the run's last finished stage (eval.json), 0 if none."""
    try:
        return int(json.loads((path / "eval.json").read_text())["step"])
    except (OSError, ValueError, KeyError):
        return 0


def command(
    args: argparse.Namespace, task: str, seed: int, frames: int, mode: str = "rgb"
) -> list[str]:
    path = run_path(args, task, seed, mode)
    repeat = action_repeat(f"dmc:{task}", PRESET)
    every = max(1, args.eval_every_frames // repeat)
    argv = [sys.executable, "-m", "saliency_rl.cli", "train", "sac"]
    common = ["--total-steps", str(steps_for(task, frames)), "--out", str(path)]
    common += ["--eval-every", str(every), "--eval-episodes", str(args.eval_episodes)]
    common += ["--checkpoint-every", str(every), "--log-every", str(max(1, every // 5))]
    common += ["--threads", str(args.threads), "--no-progress", "--device", "cpu"]
    common += shlex.split(args.sac_args)
    if has_checkpoint(path):
        return ["nice", "-n", "10", *argv, "--resume", *common]
    if path.exists():  # killed before its first checkpoint
        set_aside_unstarted(path)
    argv += ["--env", f"dmc:{task}", "--preset", PRESET, "--seed", str(seed)]
    if mode != "rgb":
        argv += ["--saliency-mode", mode, "--predictor", predictor_for(args, task)]
    return ["nice", "-n", "10", *argv, *common]


def timing_file(args: argparse.Namespace, path: Path) -> Path:
    return Path(args.runs) / "_timing" / f"{path.name}.json"


def read_timing(args: argparse.Namespace, path: Path) -> list[dict]:
    """The run's process segments; one still marked running (the script was killed) ends
    at its last checkpoint, the work after it being redone."""
    file = timing_file(args, path)
    segments = json.loads(file.read_text()) if file.exists() else []
    checkpoint = path / "checkpoints" / "latest" / "config.json"
    for seg in segments:
        if seg["status"] == "running":
            saved = checkpoint.stat().st_mtime if checkpoint.exists() else seg["start"]
            seg.update(status="interrupted", end=max(seg["start"], saved), cpu_s=None)
            seg["wall_s"] = seg["end"] - seg["start"]
    return segments


def write_timing(args: argparse.Namespace, path: Path, segments: list[dict]) -> None:
    from saliency_rl.data.atomic import atomic_write_json

    file = timing_file(args, path)
    file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(file, segments)


def run_stage(
    args: argparse.Namespace, task: str, seed: int, frames: int, mode: str = "rgb"
) -> tuple[str, int]:
    path = run_path(args, task, seed, mode)
    argv = command(args, task, seed, frames, mode)
    segments = read_timing(args, path)
    segment = {"status": "running", "start": time.time(), "from_step": reached(path),
               "to_step": steps_for(task, frames), "command": shlex.join(argv)}  # fmt: skip
    write_timing(args, path, [*segments, segment])
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OMP_WAIT_POLICY="PASSIVE")
    log = Path(args.logs) / f"{path.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"start {shlex.join(argv)}", flush=True)
    with log.open("a") as handle:
        handle.write(f"\n$ {shlex.join(argv)}\n")
        handle.flush()
        process = subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)  # the child's own rusage (and nice's)
    code = os.waitstatus_to_exitcode(status)
    segment.update(status="done" if code == 0 else f"exit {code}", end=time.time(),
                   cpu_s=usage.ru_utime + usage.ru_stime)  # fmt: skip
    segment["wall_s"] = segment["end"] - segment["start"]
    write_timing(args, path, [*segments, segment])
    print(f"done {path.name} to {frames} frames (exit {code})", flush=True)
    return path.name, code


def stages(args: argparse.Namespace) -> list[int]:
    stage = args.stage_frames or args.frames
    budgets = list(range(stage, args.frames, stage)) + [args.frames]
    return sorted(set(budgets))


def memory_need(task: str, frames: int) -> int:
    """Peak memory of a run: its replay twice (a checkpoint clones it) and 1 GiB besides."""
    return 2 * replay_bytes(task, frames) + 2**30


def train(args: argparse.Namespace) -> None:
    """Every stage: the runs below it, ``--jobs`` at a time, and never more side by side
    than fit in ``--memory-gb`` (two walker runs checkpointing at once would not in 23 GiB):
    a run that does not fit waits, and a smaller one behind it may start first."""
    warn_resources(args)
    budget = args.memory_gb * 2**30
    for frames in stages(args):
        todo = [(t, s, m) for s in args.seeds for m in args.modes for t in args.tasks
                if reached(run_path(args, t, s, m)) < steps_for(t, frames)]  # fmt: skip
        if not todo:
            continue
        print(f"stage {frames} frames: {len(todo)} runs", flush=True)
        failed, running = [], {}
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            while todo or running:
                for job in list(todo):
                    used = sum(running.values())
                    need = memory_need(job[0], frames)
                    if len(running) < args.jobs and (not running or used + need <= budget):
                        todo.remove(job)
                        task, seed, mode = job
                        future = pool.submit(run_stage, args, task, seed, frames, mode)
                        running[future] = need
                done, _ = concurrent.futures.wait(running, return_when="FIRST_COMPLETED")
                for future in done:
                    del running[future]
                    if future.result()[1] != 0:
                        failed.append(future.result())
        if args.prune_finished:
            prune_finished(args)
        report(args)
        if failed:
            raise SystemExit(f"runs failed (see {args.logs}): {failed}")


def replay_bytes(task: str, frames: int) -> int:
    """The replay of a run at ``frames``: its observations, capped as the trainer caps it."""
    return min(100_000, 2 * steps_for(task, frames) + 2) * OBS_BYTES


def warn_resources(args: argparse.Namespace) -> None:
    """Each run holds its replay in memory, and its checkpoint a copy on disk."""
    worst = max(replay_bytes(t, args.frames) for t in args.tasks)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    disk = sum(replay_bytes(t, args.frames) for t in args.tasks) * len(args.seeds)
    Path(args.runs).mkdir(parents=True, exist_ok=True)
    free = os.statvfs(args.runs).f_bavail * os.statvfs(args.runs).f_frsize
    print(f"replay per run up to {worst / 2**30:.1f} GiB ({args.jobs} jobs within "
          f"{args.memory_gb:.0f} of {memory / 2**30:.0f} GiB of memory); all checkpoints "
          f"{disk / 2**30:.0f} GiB ({free / 2**30:.0f} GiB free)", flush=True)  # fmt: skip
    if memory_need(args.tasks[0], 0) > args.memory_gb * 2**30:
        print("WARNING: --memory-gb is below a run's own needs")
    if disk > free and not args.prune_finished:
        print("WARNING: the checkpoints (each holds its replay) may not fit on disk; "
              "--prune-finished drops the training state of runs that finished")  # fmt: skip


def prune_finished(args: argparse.Namespace) -> None:
    """Drop the training state (replay, optimisers) of runs that reached the whole budget:
    the tables need only their eval.json, metrics.csv and config.json (and the weights stay)."""
    import shutil

    for task, seed, mode in cells(args):
        path = run_path(args, task, seed, mode)
        state = path / "checkpoints" / "latest" / "training_state"
        if reached(path) >= steps_for(task, args.frames) and state.exists():
            shutil.rmtree(state)
            print(f"pruned {state}", flush=True)


# ---------------------------------------------------------------------- reading runs
def metric_rows(path: Path) -> list[dict]:
    file = path / "metrics.csv"
    if not file.exists():
        return []
    with file.open(newline="") as handle:
        return list(csv.DictReader(handle))


def epoch(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso).timestamp()


def cells(args: argparse.Namespace) -> list[tuple[str, int, str]]:
    """(task, seed, mode) of every run of the grid."""
    return [(t, s, m) for m in args.modes for t in args.tasks for s in args.seeds]


def run_record(args: argparse.Namespace, task: str, seed: int, mode: str = "rgb") -> dict:
    """What the tables need of one run."""
    path = run_path(args, task, seed, mode)
    target = steps_for(task, args.frames)
    record: dict = {"task": task, "seed": seed, "mode": mode, "run": str(path),
                    "target_steps": target}  # fmt: skip
    config = (
        json.loads((path / "config.json").read_text()) if (path / "config.json").exists() else {}
    )
    precision = config.get("precision") or {}
    record["precision"] = precision.get("chosen")
    record["precision_timings_ms"] = precision.get("timings_ms")
    record["repeat"] = action_repeat(f"dmc:{task}", PRESET)
    rows = metric_rows(path)
    segments = [s for s in read_timing(args, path) if s.get("wall_s") is not None]
    record["wall_s"] = sum(s["wall_s"] for s in segments)
    cpu = [s["cpu_s"] for s in segments]
    record["cpu_s"] = None if any(c is None for c in cpu) else sum(cpu)
    updates = [int(r["updates"]) for r in rows if r.get("updates")]
    record["updates"] = max(updates) if updates else 0
    record["updates_per_s"] = record["updates"] / record["wall_s"] if record["wall_s"] else None
    step = reached(path)
    record["steps_reached"] = max([step] + [int(r["step"]) for r in rows if r.get("step")])
    record["finished"] = step >= target
    evals = [r for r in rows if r.get("eval_return_mean")]
    record["curve"] = [
        {"frames": int(r["frames"]), "return": float(r["eval_return_mean"]),
         "wall_min": elapsed_min(segments, epoch(r["time"]))}
        for r in evals
    ]  # fmt: skip
    final = json.loads((path / "eval.json").read_text())["final"] if step >= target else None
    record["final_return"] = final["return_mean"] if final else None
    return record


def elapsed_min(segments: list[dict], when: float) -> float | None:
    """Minutes of the run's own wall-clock time up to ``when``: earlier segments whole, the
    one holding ``when`` up to it (time between the script's invocations not counted)."""
    total = 0.0
    for seg in segments:
        if seg["start"] - 1 <= when <= seg["end"] + 1:  # metrics times are to the second
            return (total + max(0.0, when - seg["start"])) / 60
        total += seg["wall_s"]
    return None


# ---------------------------------------------------------------------- the report
def summary(records: list[dict], tasks: list[str]) -> dict:
    from saliency_rl.experiments.stats import iqm, mean_std, stratified_bootstrap_ci

    per_task = {}
    for task in tasks:
        runs = [r for r in records if r["task"] == task]
        finals = [r["final_return"] for r in runs if r["final_return"] is not None]
        entry: dict = {"seeds": len(runs), "finished": len(finals), "returns": finals}
        if finals:
            mean, std = mean_std(finals)
            entry.update(mean=mean, std=std, iqm=iqm(finals),
                         iqm_ci95=stratified_bootstrap_ci(finals))  # fmt: skip
            drq = PUBLISHED["DrQ"].get(task)
            entry["vs_drq"] = None if drq is None else mean - drq
        per_task[task] = entry
    # Aggregate IQM over the seeds finished on every task (rliable's runs x tasks matrix).
    common = sorted(set.intersection(*[
        {r["seed"] for r in records if r["task"] == t and r["final_return"] is not None}
        for t in tasks
    ])) if tasks else []  # fmt: skip
    aggregate = None
    if common:
        matrix = [[next(r["final_return"] for r in records if r["task"] == t and r["seed"] == s)
                   for t in tasks] for s in common]  # fmt: skip
        aggregate = {"seeds": common, "iqm": iqm(matrix),
                     "iqm_ci95": stratified_bootstrap_ci(matrix)}  # fmt: skip
    return {"per_task": per_task, "aggregate": aggregate}


def time_to_score(records: list[dict]) -> dict:
    task, score, target = TIME_TO_SCORE
    minutes = {}
    for r in records:
        if r["task"] != task or r.get("mode", "rgb") != "rgb":
            continue
        hit = next((p for p in r["curve"] if p["return"] >= score), None)
        minutes[r["seed"]] = None if hit is None else hit["wall_min"]
    reached_ = [m for m in minutes.values() if m is not None]
    median = statistics.median(reached_) if reached_ else None
    return {"task": task, "score": score, "target_min": target, "minutes": minutes,
            "median_min": median, "seeds_reaching": len(reached_)}  # fmt: skip


def report(args: argparse.Namespace) -> dict:
    from saliency_rl.data.atomic import atomic_write_json, atomic_write_text

    records = [run_record(args, *cell) for cell in cells(args)]
    by_mode = {
        m: summary([r for r in records if r["mode"] == m], list(args.tasks)) for m in args.modes
    }
    result = {
        "benchmark": "dmc100k",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python " + shlex.join(["benchmarks/dmc100k.py", *sys.argv[1:]]),
        # what continues the unfinished runs: the same command without --report
        "rerun": "python "
        + shlex.join(["benchmarks/dmc100k.py", *(a for a in sys.argv[1:] if a != "--report")]),
        "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "versions": package_versions(("torch", "numpy", "dm-control", "mujoco")),
        "preset": PRESET,
        "sac_args": args.sac_args,
        "frames": args.frames,
        "eval": {"every_frames": args.eval_every_frames, "episodes": args.eval_episodes},
        "threads_per_run": args.threads,
        "jobs": args.jobs,
        "tasks": list(args.tasks),
        "seeds": list(args.seeds),
        "published": PUBLISHED,
        "modes": list(args.modes),
        "summary": by_mode[args.modes[0]],  # DrQ itself where rgb is in the grid (first)
        "by_mode": by_mode,
        "time_to_score": time_to_score(records),
        "runs": records,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out.with_suffix(".json"), result)
    figure = curves_png(result, out.with_suffix(".png"))
    atomic_write_text(out.with_suffix(".md"), markdown(result, figure))
    print(f"wrote {out.with_suffix('.md')}", flush=True)
    return result


def curves_png(result: dict, path: Path) -> Path | None:
    """Evaluation return against wall-clock minutes, one panel per task, a line per seed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    tasks = result["tasks"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.2), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for r in (r for r in result["runs"] if r["task"] == task):
            points = [p for p in r["curve"] if p["wall_min"] is not None]
            if points:
                ax.plot([p["wall_min"] for p in points], [p["return"] for p in points],
                        marker="o", ms=3,
                        label=f"{r.get('mode', 'rgb')} seed {r['seed']}")  # fmt: skip
        drq = PUBLISHED["DrQ"].get(task)
        if drq is not None:
            ax.axhline(drq, color="grey", ls="--", lw=1, label="DrQ at 100k")
        ax.set_title(task)
        ax.set_xlabel("wall-clock minutes (1 thread)")
        ax.set_ylabel("evaluation return")
        ax.set_ylim(0, 1000)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fmt(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def markdown(r: dict, figure: Path | None) -> str:
    names = list(PUBLISHED)
    lines = [
        "# DMC-100k: the drq preset against the published 100k-frame numbers",
        "",
        f"`saliency-rl train sac --preset {r['preset']}`"
        + (f" with `{r['sac_args']}`" if r["sac_args"] else "")
        + f", {r['frames']:,} environment frames per run (agent steps = frames / action "
        "repeat), 84x84 frames, 3 stacked, evaluation: "
        f"{r['eval']['episodes']} deterministic episodes every {r['eval']['every_frames']:,} "
        f"frames and at the end. {r['threads_per_run']} torch thread per run, {r['jobs']} "
        "runs side by side. Return: the final evaluation's mean; mean ± std (population) "
        "and IQM [95 % stratified-bootstrap interval] over the seeds finished.",
        "",
        "| task | seeds finished | mean ± std | IQM [95 % CI] | "
        + " | ".join(names)
        + " | vs DrQ |",
        "|---|---|---|---|" + "---|" * len(names) + "---|",
    ]
    rows = [(mode, task, e) for mode, s in r.get("by_mode", {"rgb": r["summary"]}).items()
            for task, e in s["per_task"].items()]  # fmt: skip
    for mode, task, e in rows:
        published = " | ".join(str(PUBLISHED[n].get(task, "-")) for n in names)
        if e["finished"]:
            ci = e["iqm_ci95"]
            verdict = "met" if e["vs_drq"] >= 0 else f"missed by {-e['vs_drq']:.0f}"
            lines.append(
                f"| {label(task, mode)} | {e['finished']}/{e['seeds']} | {e['mean']:.0f} ± "
                f"{e['std']:.0f} | "
                f"{e['iqm']:.0f} [{ci[0]:.0f}, {ci[1]:.0f}] | {published} | {verdict} |"
            )
        else:
            lines.append(f"| {label(task, mode)} | 0/{e['seeds']} | - | - | {published} | - |")
    for mode, s in r.get("by_mode", {"rgb": r["summary"]}).items():
        aggregate = s["aggregate"]
        if aggregate:
            ci = aggregate["iqm_ci95"]
            lines += ["", f"IQM over all tasks, {mode} (seeds {aggregate['seeds']} finished on "
                      f"every task): {aggregate['iqm']:.0f} [{ci[0]:.0f}, {ci[1]:.0f}]."]  # fmt: skip
    t = r["time_to_score"]
    per_seed = ", ".join(f"seed {s}: {fmt(m, 1)}" for s, m in t["minutes"].items())
    verdict = "-"
    if t["median_min"] is not None:
        verdict = ("met" if t["median_min"] <= t["target_min"]
                   else f"missed by {t['median_min'] - t['target_min']:.0f} min")  # fmt: skip
    lines += [
        "",
        f"## Time to {t['score']:.0f} on {t['task']}",
        "",
        f"Wall-clock minutes of the run (its processes, 1 thread) to its first evaluation at "
        f"{t['score']:.0f} or more: {per_seed or 'no runs'} (- : not reached). Median over the "
        f"{t['seeds_reaching']} seeds that reached it: {fmt(t['median_min'], 1)} min; target "
        f"≤ {t['target_min']:.0f} min: {verdict}.",
        "",
        "## Runs",
        "",
        "| task | seed | steps reached / target | final return | wall h | CPU h | updates | "
        "updates/s | precision (fp32 / bf16 trial ms) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    unfinished = []
    for run in r["runs"]:
        timings = run["precision_timings_ms"]
        trial = f" ({timings['fp32']:.0f} / {timings['bf16']:.0f})" if timings else ""
        cpu = None if run["cpu_s"] is None else run["cpu_s"] / 3600
        lines.append(
            f"| {label(run['task'], run.get('mode', 'rgb'))} | {run['seed']} | "
            f"{run['steps_reached']:,} / "
            f"{run['target_steps']:,} | {fmt(run['final_return'])} | {run['wall_s'] / 3600:.2f} "
            f"| {fmt(cpu, 2)} | {run['updates']:,} | {fmt(run['updates_per_s'], 2)} | "
            f"{run['precision'] or '-'}{trial} |"
        )
        if not run["finished"]:
            unfinished.append(f"{label(run['task'], run.get('mode', 'rgb'))} seed {run['seed']}")
    walker = [x["wall_s"] / 3600 for x in r["runs"]
              if x["task"] == "walker-walk" and x["finished"] and x.get("mode", "rgb") == "rgb"]  # fmt: skip
    if walker:
        worst = max(walker)
        verdict = (
            "met" if worst <= WALKER_TARGET_H else f"missed by {worst - WALKER_TARGET_H:.1f} h"
        )
        lines += ["", f"Whole walker-walk runs: {', '.join(f'{w:.2f}' for w in walker)} h; "
                  f"target ≤ {WALKER_TARGET_H:.0f} h on one core: {verdict}."]  # fmt: skip
    lines += ["", "Wall time: the run's own processes (start-up, training, evaluations, "
              "checkpoints); CPU time: their user + system time from the kernel; updates/s: "
              "gradient updates per wall-clock second of the whole run. A process killed "
              "with the script counts up to its last checkpoint, and its CPU time is unknown."]  # fmt: skip
    if unfinished:
        lines += ["", f"**Not finished: {', '.join(unfinished)}.** Rerun `{r.get('rerun', r['command'])}` to "
                  "continue them from their checkpoints."]  # fmt: skip
    if figure is not None:
        lines += ["", f"![return against wall-clock time]({figure.name})"]
    lines += [
        "",
        "Evaluation return against frames (mean over the seeds that reached each point):",
        "",
    ]
    for mode, task in ((m, t) for m in r.get("modes", ["rgb"]) for t in r["tasks"]):
        points: dict[int, list[float]] = {}
        for run in (x for x in r["runs"] if x["task"] == task and x.get("mode", "rgb") == mode):
            for p in run["curve"]:
                points.setdefault(p["frames"], []).append(p["return"])
        row = ", ".join(f"{f:,}: {statistics.fmean(v):.0f} (n={len(v)})"
                        for f, v in sorted(points.items()))  # fmt: skip
        lines.append(f"- {label(task, mode)}: {row or '-'}")
    m = r["machine"]
    lines += [
        "",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs (load average {m['load_average'][0]:.1f} "
        f"when written). Versions: {r['versions']}. Date: {r['date']}.",
        "",
        f"Command: `{r['command']}`",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), help="dmc tasks")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--frames", type=int, default=100_000, help="environment frames per run")
    parser.add_argument(
        "--stage-frames", type=int, help="bring every run this far, then 2x, ... (the budget)"
    )
    parser.add_argument("--eval-every-frames", type=int, default=10_000)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    parser.add_argument(
        "--memory-gb",
        type=float,
        default=round(0.85 * memory, 1),
        help="memory the runs side by side may use (85 %% of this machine's)",
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["rgb"],
        choices=["rgb", "rgbs", "rgb_x_saliency", "saliency"],
        help="saliency input modes on the drq learner (rgb: DrQ itself; the others need "
        "--predictor)",
    )
    parser.add_argument(
        "--predictor",
        nargs="+",
        default=[],
        metavar="TASK=PATH",
        help="saliency predictor checkpoint per task for the saliency modes",
    )
    parser.add_argument("--sac-args", default="", help="extra `train sac` options, every run")
    parser.add_argument("--runs", default="runs/dmc100k", help="where the runs go")
    parser.add_argument("--logs", help="run logs (default RUNS/_logs)")
    parser.add_argument("--out", default=str(RESULTS / "dmc100k"), help="results stem")
    parser.add_argument("--report", action="store_true", help="only write the tables")
    parser.add_argument(
        "--prune-finished",
        action="store_true",
        help="drop the training state (replay) of finished runs: they cannot be extended then",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the whole pipeline on a tiny budget in a temp dir: cartpole-swingup, seed 0, "
        "2000 frames, evaluations of 2 episodes every 1000, small batches",
    )
    args = parser.parse_args()
    if args.smoke:
        tmp = Path(tempfile.mkdtemp(prefix="dmc100k_smoke_"))
        args.tasks, args.seeds, args.frames = ["cartpole-swingup"], [0], 2000
        args.eval_every_frames, args.eval_episodes, args.jobs = 1000, 2, 1
        args.stage_frames = 1000  # two stages: the second resumes the first
        args.sac_args = args.sac_args or "--init-steps 50 --batch-size 16"
        args.runs, args.out = str(tmp / "runs"), str(tmp / "results" / "dmc100k")
    args.logs = args.logs or str(Path(args.runs) / "_logs")
    if not args.report:
        train(args)
    result = report(args)
    if args.smoke:
        print(Path(args.out).with_suffix(".md").read_text())
        print(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
