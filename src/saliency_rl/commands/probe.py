"""``saliency-rl probe DATASET --encoder SPEC``: how much of the state frozen features carry."""

from __future__ import annotations

import argparse
import os
import re

from saliency_rl.commands.args import add_run_options, fraction, non_negative_int, positive_int

HELP = "probe an encoder's frozen features for the state (held-out R², ridge and MLP)"
DESCRIPTION = (
    "Encode every frame of a dataset with a frozen encoder, fit ridge and MLP probes from the "
    "features to the dataset's proprio (positions, velocities) and oracle salient points on "
    "some episodes, and print the R² on held-out episodes per quantity, for the newest "
    "frame's features and for a frame stack's. Encoders: pixels[:SIZE] (downsampled raw "
    "frames, the baseline), multimae:DIR[:MODE] and multimae-random:DIR[:MODE] (the same "
    "architecture, random weights), sac:RUN and sac-random:RUN (a SAC run's CNN). Give "
    "--encoder several times to compare them on the same split. Writes OUT/<encoder>/"
    "probe.json and probe.md."
)


def run(args: argparse.Namespace) -> None:
    from saliency_rl.data.dataset import Dataset
    from saliency_rl.devices import resolve_device
    from saliency_rl.experiments.probe import load_encoder, probe, probe_table, write_probe

    dataset = Dataset.open(args.dataset)
    device = resolve_device(args.device)
    encoders = [load_encoder(spec, device) for spec in args.encoder]  # all checked first
    name = os.path.basename(os.path.normpath(args.dataset))
    out = args.out or os.path.join("runs", f"probe__{name}")
    for spec, encoder in zip(args.encoder, encoders, strict=True):
        report = probe(
            dataset,
            encoder,
            frame_stack=args.frame_stack,
            test_fraction=args.test_fraction,
            seed=args.seed,
            progress=not args.no_progress,
        )
        directory = write_probe(report, os.path.join(out, re.sub(r"[^\w.+-]+", "_", spec)))
        seconds = report["seconds"]
        print(
            f"{report['encoder']}: {report['frames']} frames, encoded in "
            f"{seconds['encode']:.1f} s, probes fitted in {seconds['fit']:.1f} s -> {directory}"
        )
        print(probe_table(report))


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset directory (saliency-rl collect)")
    parser.add_argument(
        "--encoder",
        action="append",
        required=True,
        metavar="SPEC",
        help="pixels[:SIZE], multimae:DIR[:MODE][@READOUT], multimae-random:DIR[:MODE], "
        "sac:RUN, sac-random:RUN, attention:CKPT[@POOL], attention-random:CKPT[@POOL] "
        "(pretrain-attention's module: masked features pooled to POOL x POOL, 8); repeatable",
    )
    parser.add_argument(
        "--frame-stack", type=positive_int, default=3, help="frames of the stack view (3)"
    )
    held_out = "share of the episodes held out for the R² (0.25, the last episodes)"
    parser.add_argument("--test-fraction", type=fraction, default=0.25, help=held_out)
    parser.add_argument("--seed", type=non_negative_int, default=0, help="MLP seed (0)")
    add_run_options(parser, out="output directory (default: runs/probe__<dataset>)", device="cpu")
