"""Keypoint precision and recall on MsPacman, Frostbite and Berzerk: the self-supervised
attention module's mask peaks (ours) against Transporter with the same K, both trained on the
same random-policy frames of each game; the paper's Table 1 (Wu et al., AAAI 2021) beside.

Pipeline per game (the commands; ``--prepare`` runs them in-process when a piece is missing):

    saliency-rl collect --env atari:GAME --frames 20000 --policy random --seed 0 --out DATA/GAME
    saliency-rl pretrain-attention DATA/GAME --out CKPT/attention_GAME --steps S --batch-size 32
    saliency-rl pretrain-transporter DATA/GAME --out CKPT/transporter_GAME --keypoints K \
        --width W --steps S --batch-size 32

Evaluation: ``--frames`` frames of the game played by a random policy with another seed than
the training data (seed 1; one frame every 4 steps, actions held 4 steps), ground truth from
the RAM (saliency_rl.envs.atari_ram: the player, enemies and items, calibrated against
rendered sprites). Keypoints: ours the top-K peaks of the 7x7 mask (Gaussian sigma 0.5 cell,
3x3 NMS) at their cells' receptive-field centres, Transporter its K keypoints. Precision
and recall: greedy nearest-first matching within a threshold in pixels of the 84x84 frame,
micro-averaged over frames (saliency_rl.models.keypoints); the headline threshold is 12 px
(the width of a 7x7-mask cell), 8 and 16 are given too. Two floors put the numbers in context: K points drawn uniformly at random in
the frame, and the attention module at its initial weights (untrained).

Checkpoints are read as they are: a pretraining still running is evaluated at its last save
(the step is recorded). Results are written after every game (partial results survive);
``--resume`` keeps games whose checkpoints have not changed since they were evaluated.

Usage:
    python benchmarks/keypoints.py --data DATA --ckpt CKPT [--k 5] [--frames 300]
        [--games MsPacman Frostbite Berzerk] [--prepare --steps S --width W] [--resume]
        [--out benchmarks/results] [--name keypoints]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from run_dirs import set_aside_unstarted

from saliency_rl.data.atomic import atomic_write_text

GAMES = ("MsPacman", "Frostbite", "Berzerk")
THRESHOLDS = (8.0, 12.0, 16.0)
HEADLINE = 12.0
# Wu et al. (AAAI 2021), Table 1: (precision, recall), ours and Transporter.
PAPER = {
    "Frostbite": {"ours": (0.76, 0.57), "transporter": (0.74, 0.56)},
    "Berzerk": {"ours": (0.54, 0.46), "transporter": (0.32, 0.27)},
    "MsPacman": {"ours": (0.72, 0.52), "transporter": (0.33, 0.23)},
}


def _saved(checkpoint: Path) -> tuple[int | None, dict]:
    """(steps trained, model settings) of a checkpoint; (None, {}) when there is none."""
    try:
        config = json.loads((checkpoint / "config.json").read_text())
        return config["provenance"].get("steps"), config.get("kwargs", {})
    except (OSError, KeyError, json.JSONDecodeError):
        return None, {}


def trained_steps(ckpt: Path, game: str) -> dict[str, int | None]:
    """Pretraining steps of the two models a game is evaluated with."""
    return {
        "ours": _saved(ckpt / f"attention_{game}")[0],
        "transporter": _saved(ckpt / f"transporter_{game}")[0],
    }


def prepare(game: str, data: Path, ckpt: Path, k: int, steps: int, width: int) -> None:
    """Collect and pretrain what is missing, through the CLI (in-process). A pretraining
    stopped early is resumed to ``steps``; one stopped before its first checkpoint is kept
    aside as ``NAME.no-checkpoint-<ns>`` and started again. A checkpoint that cannot be
    resumed into the one asked for (no training state: made before pretrain-attention could
    resume; or another Transporter width or number of keypoints) is kept aside as
    ``NAME.<steps>-steps`` and trained anew.
    """
    from saliency_rl.cli import main

    def run(args: list[str]) -> None:
        if main(args) != 0:
            raise SystemExit(f"keypoints: `saliency-rl {' '.join(args)}` failed")

    quiet = ["--no-progress", "--device", "cpu"]
    if not (data / game).exists():
        run(["collect", "--env", f"atari:{game}", "--frames", "20000", "--policy", "random"]
            + ["--seed", "0", "--out", str(data / game), "--no-progress"])  # fmt: skip
    # The model's own settings go to a new pretraining only: a resume keeps the saved ones.
    transporter = ["--keypoints", str(k), "--width", str(width)]
    wanted = {"attention": {}, "transporter": {"num_keypoints": k, "width": width}}
    for kind, new in (("attention", []), ("transporter", transporter)):
        out = ckpt / f"{kind}_{game}"
        done, settings = _saved(out)
        same = all(settings.get(name) == value for name, value in wanted[kind].items())
        if done == steps and same:
            continue
        if done is not None and not (same and (out / "training_state").is_dir()):
            out.rename(out.with_name(f"{out.name}.{done}-steps"))
            done = None
        elif done is None and out.is_dir() and any(out.iterdir()):  # killed before a checkpoint
            set_aside_unstarted(out)
        run([f"pretrain-{kind}", str(data / game), "--out", str(out)]
            + (["--resume"] if done is not None else new)
            + ["--steps", str(steps), "--batch-size", "32", *quiet])  # fmt: skip


def evaluate_game(
    game: str, ckpt: Path, k: int, frames: int, seed: int, steps: dict[str, int | None]
) -> dict:
    from saliency_rl.experiments.keypoints import KeypointModel, load_keypoint_model, play_frames
    from saliency_rl.models.attention import SelfSupervisedAttention
    from saliency_rl.models.keypoints import precision_recall

    started = time.perf_counter()
    played = play_frames(game, frames, seed=seed)
    torch.manual_seed(0)
    models = {
        "ours": load_keypoint_model(ckpt / f"attention_{game}"),
        "transporter": load_keypoint_model(ckpt / f"transporter_{game}"),
        "untrained attention": KeypointModel(
            "attention", SelfSupervisedAttention(1).eval(), "initial weights, seed 0"
        ),
    }
    result: dict = {
        "game": game,
        "frames": frames,
        "objects_per_frame": float(np.mean([len(o) for o in played.objects])),
        "steps": steps,
        "methods": {},
    }
    for name, model in models.items():
        points, _ = model.keypoints(played.frames, k)
        result["methods"][name] = {
            str(t): precision_recall(list(points), played.objects, t) for t in THRESHOLDS
        }
    rng = np.random.default_rng(seed)
    uniform = [rng.uniform(0, 83, (k, 2)) for _ in range(frames)]
    result["methods"]["uniform random"] = {
        str(t): precision_recall(uniform, played.objects, t) for t in THRESHOLDS
    }
    # Ours at other k, without retraining (Transporter would need one model per K).
    result["ours_other_k"] = {}
    for other in (3, 8):
        points, _ = models["ours"].keypoints(played.frames, other)
        result["ours_other_k"][str(other)] = precision_recall(
            list(points), played.objects, HEADLINE
        )
    result["seconds"] = time.perf_counter() - started
    return result


def _pr(metrics: dict) -> str:
    return f"{metrics['precision']:.2f} / {metrics['recall']:.2f}"


def write_markdown(report: dict, path: Path) -> None:
    k = report["k"]
    lines = [
        "# Keypoints: attention mask peaks vs Transporter (precision / recall)",
        "",
        f"Date {report['date']}; machine {report['machine']}; {report['versions']}.",
        f"Load average when evaluated: {report['load_average']}.",
        "",
        "Command:",
        "",
        "```",
        report["command"],
        "```",
        "",
        report["budget_note"],
        "",
        f"K = {k} keypoints for both; {report['frames']} evaluation frames per game (random "
        "policy, seed 1, not the training data); threshold "
        f"{HEADLINE:g} px of the 84x84 frame (one 7x7-mask cell) unless said otherwise; "
        "greedy nearest-first matching, micro-averaged (saliency_rl.models.keypoints).",
        "",
        "| game | objects/frame | ours (steps) | Transporter (steps) | untrained attention "
        "| uniform random | paper ours | paper Transporter |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for game in report["games"]:
        r = report["results"].get(game)
        if r is None:
            lines.append(f"| {game} | not evaluated | | | | | | |")
            continue
        m = {name: v[str(HEADLINE)] for name, v in r["methods"].items()}
        paper = PAPER[game]
        lines.append(
            f"| {game} | {r['objects_per_frame']:.1f} | {_pr(m['ours'])} ({r['steps']['ours']}) "
            f"| {_pr(m['transporter'])} ({r['steps']['transporter']}) "
            f"| {_pr(m['untrained attention'])} | {_pr(m['uniform random'])} "
            f"| {paper['ours'][0]:.2f} / {paper['ours'][1]:.2f} "
            f"| {paper['transporter'][0]:.2f} / {paper['transporter'][1]:.2f} |"
        )
    lines += ["", "Other thresholds (precision / recall):", ""]
    lines += ["| game | method | " + " | ".join(f"{t:g} px" for t in THRESHOLDS) + " |"]
    lines += ["|---|---|" + "---|" * len(THRESHOLDS)]
    for game in report["games"]:
        r = report["results"].get(game)
        if r is None:
            continue
        for name, by_t in r["methods"].items():
            cells = " | ".join(_pr(by_t[str(t)]) for t in THRESHOLDS)
            lines.append(f"| {game} | {name} | {cells} |")
    lines += ["", f"Ours at other k, same model, no retraining ({HEADLINE:g} px):", ""]
    lines += ["| game | k=3 | k=8 |", "|---|---|---|"]
    for game in report["games"]:
        r = report["results"].get(game)
        if r is not None:
            o = r["ours_other_k"]
            lines.append(f"| {game} | {_pr(o['3'])} | {_pr(o['8'])} |")
    lines += ["", "## Against the paper", ""]
    for game in report["games"]:
        r = report["results"].get(game)
        if r is None:
            lines.append(f"- {game}: not evaluated in the time available.")
            continue
        ours = r["methods"]["ours"][str(HEADLINE)]
        trans = r["methods"]["transporter"][str(HEADLINE)]
        p_ours, p_trans = PAPER[game]["ours"], PAPER[game]["transporter"]
        lines.append(
            f"- {game}: ours {_pr(ours)} vs the paper's {p_ours[0]:.2f} / {p_ours[1]:.2f} "
            f"(precision {ours['precision'] - p_ours[0]:+.2f}, recall "
            f"{ours['recall'] - p_ours[1]:+.2f}); Transporter {_pr(trans)} vs "
            f"{p_trans[0]:.2f} / {p_trans[1]:.2f} (precision "
            f"{trans['precision'] - p_trans[0]:+.2f}, recall {trans['recall'] - p_trans[1]:+.2f}); "
            + (
                "ours ahead of Transporter on both, as in the paper."
                if ours["precision"] > trans["precision"] and ours["recall"] > trans["recall"]
                else "the paper's ordering (ours ahead on both) is not reproduced here."
            )
        )
    lines += ["", report["notes"], ""]
    atomic_write_text(path, "\n".join(lines))


def _command(argv: list[str]) -> str:
    """The command line, with the free texts of --budget-note and --notes shown as TEXT."""
    shown = []
    for i, word in enumerate(argv):
        shown.append("TEXT" if i and argv[i - 1] in ("--budget-note", "--notes") else word)
    return "python " + " ".join(shown)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="datasets, one folder per game")
    parser.add_argument("--ckpt", type=Path, required=True, help="attention_/transporter_<Game>")
    parser.add_argument("--games", nargs="+", default=list(GAMES), choices=GAMES)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--prepare", action="store_true", help="collect/pretrain what is missing")
    parser.add_argument("--steps", type=int, default=400, help="pretraining steps (--prepare)")
    parser.add_argument("--width", type=int, default=16, help="Transporter width (--prepare)")
    parser.add_argument("--resume", action="store_true", help="keep games already evaluated")
    parser.add_argument("--budget-note", default="", help="what budget was used, for the record")
    parser.add_argument("--notes", default="", help="free text appended to the results file")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument(
        "--name", default="keypoints", help="results file stem: OUT/NAME.json and OUT/NAME.md"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)

    json_path, md_path = args.out / f"{args.name}.json", args.out / f"{args.name}.md"
    previous = json.loads(json_path.read_text()) if args.resume and json_path.exists() else {}
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": _command(sys.argv),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "versions": f"python {platform.python_version()}, torch {torch.__version__}, "
        f"ale-py {version('ale-py')}, saliency-rl {version('saliency-rl')}",
        "load_average": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "k": args.k,
        "frames": args.frames,
        "thresholds": list(THRESHOLDS),
        "headline_threshold": HEADLINE,
        "games": args.games,
        "paper": PAPER,
        "budget_note": args.budget_note,
        "notes": args.notes,
        "results": {},
    }
    for game in args.games:
        if args.prepare:
            prepare(game, args.data, args.ckpt, args.k, args.steps, args.width)
        old = previous.get("results", {}).get(game)
        steps_now = trained_steps(args.ckpt, game)
        if old is not None and old["steps"] == steps_now and old["frames"] == args.frames:
            report["results"][game] = old
        else:
            print(f"{game}: evaluating (steps {steps_now})", flush=True)
            report["results"][game] = evaluate_game(
                game, args.ckpt, args.k, args.frames, args.seed, steps_now
            )
        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(json_path, json.dumps(report, indent=2))
        write_markdown(report, md_path)
    print(md_path.read_text())


if __name__ == "__main__":
    main()
