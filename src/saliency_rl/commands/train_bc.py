"""``saliency-rl train bc``: behaviour cloning with an LSTM policy on frozen MultiMAE features."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from saliency_rl.commands.args import (
    DISTRACTOR_HELP,
    add_dataclass_options,
    add_run_options,
    distractor_mode,
    given,
    int_types,
    run_to_resume,
)
from saliency_rl.errors import SaliencyRLError

# BCConfig fields that are options of their own, in --help's order.
POLICY_FIELDS = ("chunk", "history", "execution", "ensemble_decay")
NETWORK_FIELDS = ("lstm_hidden", "head_hidden")
TRAINING_FIELDS = (
    "steps", "batch_size", "learning_rate", "weight_decay", "grad_clip", "val_fraction", "seed",
    "log_every", "checkpoint_every", "eval_every", "eval_episodes", "precision",
)  # fmt: skip
SETTINGS = ("mlp_hidden", *POLICY_FIELDS, *NETWORK_FIELDS, *TRAINING_FIELDS)
"""BCConfig fields the command sets (and use_proprio); None: the preset's value."""
HELPS = {
    "execution": "chunk execution: ensemble (temporal ensembling), first (replan every step), "
    "all (H actions open loop)",
}
"""Help in the command's words, where BCConfig's docstring points at the module's."""
POSITIVE = ("chunk", "history", "lstm_hidden", "head_hidden", "steps", "batch_size")
NON_NEGATIVE = ("seed", "log_every", "checkpoint_every", "eval_every", "eval_episodes")
INT_TYPES = int_types(POSITIVE, NON_NEGATIVE)


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not comma-separated integers") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"widths must be positive, got {text!r}")
    return widths


HELP = "behaviour cloning from demonstrations on frozen MultiMAE features (LSTM policy)"
DESCRIPTION = (
    "Behaviour cloning as in ViSaRL's real-robot experiment: frozen MultiMAE "
    "features of each frame (+ proprio) -> MLP 256-256 -> LSTM 256 over a history window "
    "-> MLP predicting the next H actions, MSE to the demonstrations' actions. Features are "
    "computed once per dataset. The final policy is evaluated closed-loop on new object and "
    "goal positions. Writes runs/<name>/: config.json, metrics.csv, checkpoints/, eval.json. "
    "Unset options take the preset's values."
)


def run(args: argparse.Namespace) -> None:
    from saliency_rl.algos.bc import preset_config
    from saliency_rl.algos.bc_trainer import resume_bc, train_bc

    settings = {name: getattr(args, name) for name in SETTINGS}
    settings["use_proprio"] = False if args.no_proprio else None
    progress = not args.no_progress
    if args.resume:
        run_dir = resume_bc(run_to_resume(args), device=args.device, progress=progress, **settings)
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
            eval_distractors=tuple(args.eval_distractor or ()),
            progress=progress,
            **given(args, "mode", "predictor", "out", "name", "device", "preset"),
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


def add_options(parser: argparse.ArgumentParser) -> None:
    from saliency_rl.algos.bc import EXECUTIONS, PRESETS, BCConfig, preset_config
    from saliency_rl.models.frozen_encoder import ENCODER_MODES
    from saliency_rl.precision import PRECISIONS

    default = preset_config("visarl-bc")

    def config_options(*fields: str, **choices: Sequence[str]) -> None:
        add_dataclass_options(
            parser,
            BCConfig,
            fields=fields,
            flags={"learning_rate": "--lr"},
            types=INT_TYPES,
            choices=choices,
            helps=HELPS,
            shown={"visarl-bc": default},
        )

    parser.add_argument(
        "--dataset", help="demonstrations: a dataset with actions (collect --policy expert)"
    )
    parser.add_argument(
        "--encoder", help="MultiMAE pretraining run or checkpoint (saliency-rl pretrain)"
    )
    parser.add_argument(
        "--mode",
        choices=tuple(ENCODER_MODES),
        help="encoder mode: rgb (RGB-only pretraining), rgb+saliency-pretrain-only, "
        "rgb+saliency (default: what the encoder was pretrained on)",
    )
    parser.add_argument(
        "--predictor",
        help="saliency predictor checkpoint for rgb+saliency (default: the one that labelled "
        "the dataset)",
    )
    parser.add_argument(
        "--preset",
        default="visarl-bc",
        help=f"hyperparameter preset: {', '.join(PRESETS)} (default: %(default)s)",
    )
    config_options(*POLICY_FIELDS, execution=EXECUTIONS)
    parser.add_argument(
        "--mlp-hidden",
        type=_widths,
        help="input MLP widths, comma-separated (default: "
        + ",".join(str(w) for w in default.mlp_hidden)
        + ")",
    )
    config_options(*NETWORK_FIELDS)
    parser.add_argument("--no-proprio", action="store_true", help="visual features only")
    config_options(*TRAINING_FIELDS, precision=PRECISIONS)
    parser.add_argument(
        "--eval-distractor",
        action="append",
        type=distractor_mode,
        metavar="MODE",
        help="also evaluate the final policy under this distractor (repeatable): "
        + DISTRACTOR_HELP,
    )
    add_run_options(
        parser,
        out="run directory (default: runs/<name>)",
        name="run name (default: <env>__bc-multimae-<mode>__<seed>__<time>)",
        resume="continue the run in --out (or runs/<name>) from its checkpoint",
        threads=True,
    )
