"""``saliency-rl info``: a dataset's spec, size and fields, and which of its files are damaged."""

from __future__ import annotations

import argparse

HELP = "describe a dataset and find damaged files"
DESCRIPTION = (
    "Print a dataset's spec, size and fields, and check that every episode and "
    "field file opens and matches meta.json (dtype, shape, length; the headers only, so it "
    "is quick). Damaged or foreign files are named, with exit code 2."
)


def run(args: argparse.Namespace) -> None:
    from saliency_rl.data.dataset import Dataset
    from saliency_rl.errors import DatasetError
    from saliency_rl.saliency.annotations import AnnotationStore

    dataset = Dataset.open(args.dataset)
    print(dataset.summary())
    for name in dataset.meta["extra_fields"]:
        lacking = dataset.episodes_lacking(name)
        if lacking:  # a labelling still to finish, or episodes collected after it
            print(
                f"field {name} is missing for {len(lacking)} of {dataset.num_episodes} episodes "
                f"(first: {dataset.episode_file(lacking[0])})"
            )
    annotated = AnnotationStore(dataset).annotated()
    print(f"annotated {len(annotated)} frames")
    problems = dataset.check(read=args.check)
    for problem in problems:
        print(f"damaged: {problem}")
    if problems:
        raise DatasetError(
            f"dataset {dataset.root} has {len(problems)} damaged or foreign file(s), listed "
            f"above; the first: {problems[0]}"
        )


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset directory")
    parser.add_argument(
        "--check",
        action="store_true",
        help="also read every file in full (slow: the whole dataset): finds damage inside a "
        "file and NaN or inf in float fields",
    )
