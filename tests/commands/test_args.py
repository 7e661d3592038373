"""The shared argument helpers: options read off a config dataclass, the run options, and
options added on first use (so ``saliency-rl --help`` does not import torch)."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from dataclasses import dataclass
from typing import Literal

import pytest

from saliency_rl.cli import main
from saliency_rl.commands.args import (
    FIELD_DEFAULT,
    Parser,
    add_dataclass_options,
    add_run_options,
    field_docs,
    positive_int,
)


@dataclass
class ToyConfig:
    """A config with one field of each kind the helper reads."""

    total_steps: int = 100
    """Agent steps to train."""
    learning_rate: float = 3e-4
    """Adam learning rate; 5% warm-up."""
    mode: Literal["fast", "slow"] = "fast"
    """How to go: fast or slow."""
    augment: bool = False
    """Shift every batch. Spread over
    two lines, indented."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam betas."""
    widths: tuple[int, ...] = (32, 32)
    """Hidden widths."""
    name: str | None = None
    """Run name."""
    undocumented: int = 7


def parser_with(**kwargs) -> argparse.ArgumentParser:
    parser = Parser(prog="toy")
    add_dataclass_options(parser, ToyConfig, **kwargs)
    return parser


def option(parser: argparse.ArgumentParser, dest: str) -> argparse.Action:
    (action,) = [a for a in parser._actions if a.dest == dest]
    return action


def test_docstrings_are_read_from_the_class_body():
    docs = field_docs(ToyConfig)
    assert docs["total_steps"] == "Agent steps to train."
    assert docs["augment"] == "Shift every batch. Spread over two lines, indented."
    assert "undocumented" not in docs


def test_every_field_becomes_an_option_with_its_type_default_and_docstring():
    parser = parser_with()
    flags = [a.option_strings for a in parser._actions if a.dest != "help"]
    assert flags == [
        ["--total-steps"], ["--learning-rate"], ["--mode"], ["--augment", "--no-augment"],
        ["--betas"], ["--widths"], ["--name"], ["--undocumented"],
    ]  # fmt: skip
    assert option(parser, "total_steps").help == "Agent steps to train. (default: 100)"
    assert option(parser, "mode").choices == ("fast", "slow")
    assert option(parser, "undocumented").help == "default: 7"
    assert option(parser, "name").help == "Run name."  # None: no default to show
    help_text = parser.format_help()  # % in a docstring is not a format directive
    assert "5% warm-up. (default: 0.0003)" in help_text
    assert "(default: 0.9 0.999)" in help_text

    args = parser.parse_args([])
    assert all(getattr(args, f.name) is None for f in dataclasses.fields(ToyConfig))
    args = parser.parse_args(
        ["--total-steps", "5", "--learning-rate", "0.1", "--mode", "slow", "--augment"]
        + ["--betas", "0.5", "0.9", "--widths", "8", "16", "4", "--name", "x"]
    )
    assert (args.total_steps, args.learning_rate, args.mode, args.augment) == (5, 0.1, "slow", True)
    assert args.betas == (0.5, 0.9) and args.widths == (8, 16, 4) and args.name == "x"
    assert parser.parse_args(["--no-augment"]).augment is False


@pytest.mark.parametrize(
    "argv",
    [["--mode", "medium"], ["--total-steps", "many"], ["--betas", "0.5"], ["--widths"]],
)
def test_a_bad_value_is_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        parser_with().parse_args(argv)
    assert exit_.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1  # one line: Parser's error


def test_what_an_option_left_out_stores():
    defaults = parser_with(unset=FIELD_DEFAULT).parse_args([])
    assert dataclasses.replace(ToyConfig(), **vars(defaults)) == ToyConfig()
    suppressed = parser_with(unset=argparse.SUPPRESS).parse_args(["--mode", "slow"])
    assert vars(suppressed) == {"mode": "slow"}


def test_fields_order_skip_flags_types_choices_helps():
    parser = parser_with(
        fields=("mode", "learning_rate", "total_steps"),
        skip=("total_steps",),
        flags={"learning_rate": "--lr"},
        types={"learning_rate": positive_int},
        choices={"mode": ("fast",)},
        helps={"mode": "only fast here"},
    )
    assert [a.dest for a in parser._actions] == ["help", "mode", "learning_rate"]
    assert option(parser, "learning_rate").option_strings == ["--lr"]
    assert "--lr LR" in parser.format_help()
    assert parser.parse_args(["--lr", "3"]).learning_rate == 3
    assert option(parser, "mode").choices == ("fast",)
    assert option(parser, "mode").help == "only fast here (default: fast)"
    with pytest.raises(SystemExit):
        parser.parse_args(["--lr", "0"])  # positive_int


def test_presets_shown_as_the_default_once_when_they_agree():
    presets = {
        "small": ToyConfig(total_steps=10),
        "big": ToyConfig(),
        "on": ToyConfig(augment=True),
    }
    parser = parser_with(shown=presets, fields=("total_steps", "mode", "augment"))
    assert option(parser, "total_steps").help.endswith("(default: small 10, big 100, on 100)")
    assert option(parser, "mode").help.endswith("(default: fast)")
    assert option(parser, "augment").help.endswith("(default: small off, big off, on on)")


def test_wrong_names_and_unsupported_types_are_refused():
    with pytest.raises(TypeError, match=r"no fields \['total_step'\]"):
        parser_with(fields=("total_step",))
    with pytest.raises(TypeError, match="is not a dataclass"):
        add_dataclass_options(Parser(), dict)

    @dataclass
    class Nested:
        table: dict[str, int] = dataclasses.field(default_factory=dict)

    with pytest.raises(TypeError, match="Nested.table: no option for type"):
        add_dataclass_options(Parser(), Nested)


def test_run_options_keep_their_spelling_defaults_and_meaning():
    parser = Parser(prog="run")
    add_run_options(parser, out="where", name="called", resume="go on", threads=True)
    dests = [a.dest for a in parser._actions]
    assert dests == ["help", "out", "name", "resume", "device", "threads", "no_progress"]
    args = parser.parse_args([])
    assert vars(args) == {
        "out": None, "name": None, "resume": False, "device": "auto", "threads": None,
        "no_progress": False,
    }  # fmt: skip
    assert option(parser, "device").choices == ("auto", "cpu", "cuda")
    assert option(parser, "out").help == "where"
    args = parser.parse_args(["--device", "cpu", "--threads", "2", "--no-progress", "--resume"])
    assert (args.device, args.threads, args.no_progress, args.resume) == ("cpu", 2, True, True)
    with pytest.raises(SystemExit):
        parser.parse_args(["--threads", "0"])

    bare = Parser(prog="bare")
    add_run_options(bare, device="cpu", progress=False)
    assert [a.dest for a in bare._actions] == ["help", "device"]
    assert bare.parse_args([]).device == "cpu"


def test_options_added_later_appear_on_first_parse_or_help():
    calls = []
    parser = Parser(prog="late")
    parser.add_options_later(lambda p: calls.append(p.add_argument("--x", type=int)))
    assert calls == []
    assert parser.parse_args(["--x", "2"]).x == 2
    assert "--x" in parser.format_help() and len(calls) == 1  # once


def test_the_cli_parser_does_not_import_torch():
    code = "import sys; from saliency_rl.cli import build_parser; build_parser()"
    code += "; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.parametrize("algorithm", ["sac", "bc", "a2c", "acktr"])
def test_train_help_documents_every_option_from_its_config(algorithm, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", algorithm, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "--total-steps" in text or "--steps" in text
    assert "--lr" in text or "--actor-lr" in text
    assert "(default:" in text and "``" not in text
