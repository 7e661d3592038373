"""``saliency-rl train bc``: behaviour cloning with an LSTM policy on frozen MultiMAE features."""

from __future__ import annotations

import argparse
import json
import os

from saliency_rl.errors import SaliencyRLError

ENCODER_MODES = ("rgb", "rgb+saliency-pretrain-only", "rgb+saliency")
DISTRACTORS = ("color_easy", "color_hard", "video_easy", "video_hard")


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not comma-separated integers") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"widths must be positive, got {text!r}")
    return widths


def cmd_train_bc(args: argparse.Namespace) -> None:
    import torch

    from saliency_rl.algos.bc import preset_config
    from saliency_rl.algos.bc_trainer import resume_bc, train_bc

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = {
        "mlp_hidden": args.mlp_hidden,
        "lstm_hidden": args.lstm_hidden,
        "head_hidden": args.head_hidden,
        "history": args.history,
        "chunk": args.chunk,
        "execution": args.execution,
        "ensemble_decay": args.ensemble_decay,
        "use_proprio": False if args.no_proprio else None,
        "learning_rate": args.lr,
        "weight_decay": args.weight_decay,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "grad_clip": args.grad_clip,
        "val_fraction": args.val_fraction,
        "seed": args.seed,
        "log_every": args.log_every,
        "checkpoint_every": args.checkpoint_every,
        "eval_every": args.eval_every,
        "eval_episodes": args.eval_episodes,
    }
    progress = not args.no_progress
    if args.resume:
        run_dir = args.out or (os.path.join("runs", args.name) if args.name else None)
        if run_dir is None:
            raise SaliencyRLError("--resume needs the run: give --out RUN_DIR or --name NAME")
        run_dir = resume_bc(run_dir, device=args.device, progress=progress, **settings)
    else:
        missing = [f"--{n}" for n in ("dataset", "encoder") if getattr(args, n) is None]
        if missing:
            raise SaliencyRLError(
                f"train bc needs {' and '.join(missing)}: demonstrations (saliency-rl collect "
                "--policy expert) and a pretrained encoder (saliency-rl pretrain)"
            )
        run_dir = train_bc(
            args.dataset,
            args.encoder,
            preset_config(args.preset, **settings),
            mode=args.mode,
            predictor=args.predictor,
            out=args.out,
            name=args.name,
            device=args.device,
            preset=args.preset,
            eval_distractors=tuple(args.eval_distractor or ()),
            progress=progress,
        )
    result = json.loads((run_dir / "eval.json").read_text())
    final = result.get("final")
    text = f"run {run_dir}"
    if final:
        text += f": success rate {final.get('success_rate', float('nan')):.2f}"
        text += f", return {final['return_mean']:.1f} over {final['episodes']} episodes"
        for name, found in result.get("distractors", {}).items():
            text += f"; {name} {found.get('success_rate', float('nan')):.2f}"
    print(text)


def register(commands: argparse._SubParsersAction, train: argparse._SubParsersAction) -> None:
    from saliency_rl.cli import non_negative_int, positive_int

    bc = train.add_parser(
        "bc",
        help="behaviour cloning from demonstrations on frozen MultiMAE features (LSTM policy)",
        description="Behaviour cloning as in ViSaRL's real-robot experiment: frozen MultiMAE "
        "features of each frame (+ proprio) -> MLP 256-256 -> LSTM 256 over a history window "
        "-> MLP predicting the next H actions, MSE to the demonstrations' actions. Features are "
        "computed once per dataset. The final policy is evaluated closed-loop on new object and "
        "goal positions. Writes runs/<name>/: config.json, metrics.csv, checkpoints/, eval.json. "
        "Unset options take the preset's values.",
    )
    bc.add_argument(
        "--dataset", help="demonstrations: a dataset with actions (collect --policy expert)"
    )
    bc.add_argument(
        "--encoder", help="MultiMAE pretraining run or checkpoint (saliency-rl pretrain)"
    )
    bc.add_argument(
        "--mode",
        choices=ENCODER_MODES,
        help="encoder mode: rgb (RGB-only pretraining), rgb+saliency-pretrain-only, "
        "rgb+saliency (default: what the encoder was pretrained on)",
    )
    bc.add_argument(
        "--predictor",
        help="saliency predictor checkpoint for rgb+saliency (default: the one that labelled "
        "the dataset)",
    )
    bc.add_argument("--preset", default="visarl-bc", help="hyperparameter preset: visarl-bc, tiny")
    bc.add_argument("--chunk", type=positive_int, help="H: actions predicted per step (5)")
    bc.add_argument("--history", type=positive_int, help="W: states in the LSTM window (10)")
    bc.add_argument(
        "--execution",
        choices=("ensemble", "first", "all"),
        help="chunk execution: ensemble (temporal ensembling, default), first (replan every "
        "step), all (H actions open loop)",
    )
    bc.add_argument(
        "--ensemble-decay", type=float, help="temporal ensembling weight decay m (0.01)"
    )
    bc.add_argument("--mlp-hidden", type=_widths, help="input MLP widths (256,256)")
    bc.add_argument("--lstm-hidden", type=positive_int, help="LSTM hidden units (256)")
    bc.add_argument("--head-hidden", type=positive_int, help="output MLP hidden width (256)")
    bc.add_argument("--no-proprio", action="store_true", help="visual features only")
    bc.add_argument("--steps", type=positive_int, help="gradient steps (5000)")
    bc.add_argument("--batch-size", type=positive_int, help="windows per step (64)")
    bc.add_argument("--lr", type=float, help="AdamW learning rate (3e-4)")
    bc.add_argument("--weight-decay", type=float, help="AdamW weight decay (0)")
    bc.add_argument("--grad-clip", type=float, help="gradient norm clip, 0 for none (1.0)")
    bc.add_argument(
        "--val-fraction", type=float, help="share of episodes held out for validation (0.1)"
    )
    bc.add_argument("--seed", type=non_negative_int, help="random seed (0)")
    bc.add_argument("--log-every", type=non_negative_int, help="steps between log rows (100)")
    bc.add_argument(
        "--checkpoint-every", type=non_negative_int, help="steps between checkpoints (1000)"
    )
    bc.add_argument(
        "--eval-every", type=non_negative_int, help="steps between evaluations (0: at the end)"
    )
    bc.add_argument(
        "--eval-episodes", type=non_negative_int, help="closed-loop episodes per evaluation (50)"
    )
    bc.add_argument(
        "--eval-distractor",
        action="append",
        choices=DISTRACTORS,
        help="also evaluate the final policy under this distractor (our own sets; repeatable)",
    )
    bc.add_argument("--out", help="run directory (default: runs/<name>)")
    bc.add_argument("--name", help="run name (default: <env>__bc-multimae-<mode>__<seed>__<time>)")
    bc.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out (or runs/<name>) from its checkpoint",
    )
    bc.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA if present"
    )
    bc.add_argument("--threads", type=positive_int, help="torch CPU threads (torch's default)")
    bc.add_argument("--no-progress", action="store_true", help="no progress bar")
    bc.set_defaults(handler=cmd_train_bc)
