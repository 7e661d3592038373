"""The argument helpers every command shares: the parser class, checked integer types, the
environment options, the run options (``--device``, ``--no-progress``, ``--out`` ...) and
options read off a config dataclass, so that a field's docstring and default are its help.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import os
import textwrap
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from types import UnionType
from typing import Any

from saliency_rl.errors import SaliencyRLError

EXIT_BAD_INPUT = 2

Options = argparse.ArgumentParser | argparse._ArgumentGroup
"""Where options go: a parser or one of its argument groups."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that names the problem and where help is.

    Options may be added on first use (:meth:`add_options_later`): a command whose options
    are read off a config class in a module that imports torch leaves ``saliency-rl --help``
    and every other command fast.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._later: list[Callable[[Parser], None]] = []

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def add_options_later(self, add_options: Callable[[Parser], None]) -> None:
        """Call ``add_options(self)`` just before this parser first parses or formats help."""
        self._later.append(add_options)

    def _add_later_options(self) -> None:
        while self._later:
            self._later.pop(0)(self)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        self._add_later_options()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._add_later_options()
        return super().format_usage()

    def format_help(self) -> str:
        self._add_later_options()
        return super().format_help()


# ---------------------------------------------------------------------- value types
def int_at_least(minimum: int, wanted: str) -> Callable[[str], int]:
    """An option type: an integer >= ``minimum``; ``wanted`` names it in the error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {value}")
        return value

    return parse


positive_int = int_at_least(1, "a positive integer")
non_negative_int = int_at_least(0, ">= 0")


def fraction(text: str) -> float:
    """An option type: a share, a number in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value:g}")
    return value


DISTRACTOR_HELP = (
    "our own sets: color_easy, color_hard (colours drawn around the defaults), video_easy, "
    "video_hard (procedural moving backgrounds; hard also replaces the floor); objects "
    "(metaworld: copies of the task's object on the table); or MODE:PATH for DMC-GB's own "
    "data (video_hard:DIR with DIR/video_hard/*.mp4 or clips in DIR, color_hard:DIR with "
    "DIR/color_hard.json)"
)


def distractor_mode(text: str) -> str:
    """An option type: ``clean``, a distractor mode, or ``MODE:PATH`` (files read later)."""
    from saliency_rl.envs.spec import check_distractor
    from saliency_rl.errors import EnvSpecError

    try:
        check_distractor(text)
    except EnvSpecError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def int_types(positive: Sequence[str], non_negative: Sequence[str]) -> dict[str, Callable]:
    """``add_dataclass_options``' ``types`` for integer fields: positive or non-negative."""
    return {
        **dict.fromkeys(positive, positive_int),
        **dict.fromkeys(non_negative, non_negative_int),
    }


def add_choice(parser: Options, flag: str, choices: Sequence[str], help: str) -> None:
    """An option that takes one of ``choices``; the first is the default."""
    parser.add_argument(flag, choices=tuple(choices), default=choices[0], help=help)


# ---------------------------------------------------------------------- environment options
def add_env_options(parser: argparse.ArgumentParser) -> None:
    """The ``make_env`` options, in their own group; read them back with :func:`env_options`."""
    group = parser.add_argument_group("environment options")
    group.add_argument(
        "--image-size", type=positive_int, help="square frame size in pixels (64; Atari 84)"
    )
    group.add_argument(
        "--frame-stack", type=positive_int, help="frames stacked per observation (1; Atari 4)"
    )
    group.add_argument(
        "--action-repeat", type=positive_int, help="times each action is applied (1)"
    )
    group.add_argument(
        "--episode-length", type=positive_int, help="steps before truncation (the suite's limit)"
    )
    group.add_argument("--camera", help="camera name or index (each suite has a default)")
    add_choice(
        group,
        "--render-quality",
        ("fast", "default"),
        "fast offscreen rendering (default) or the suite's own visual settings",
    )
    group.add_argument(
        "--preset", help="named paper setting, e.g. dmc-100k, visarl-metaworld, atari"
    )


def env_options(args: argparse.Namespace) -> dict:
    """The ``make_env`` keyword arguments the user set with :func:`add_env_options`' options."""
    options = {
        "image_size": args.image_size,
        "frame_stack": args.frame_stack,
        "action_repeat": args.action_repeat,
        "episode_length": args.episode_length,
        "camera": args.camera,
        "render_quality": None if args.render_quality == "fast" else args.render_quality,
        "preset": args.preset,
    }
    return {k: v for k, v in options.items() if v is not None}


# ---------------------------------------------------------------------- handing options on
def given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """``{name: args.<name>}``: options handed on as the library keywords of the same name;
    ``progress`` is ``not args.no_progress``."""
    return {
        name: not args.no_progress if name == "progress" else getattr(args, name) for name in names
    }


def run_to_resume(args: argparse.Namespace) -> str:
    """The run directory ``--resume`` continues: ``--out``, or ``runs/<--name>``."""
    if args.out:
        return args.out
    if args.name:
        return os.path.join("runs", args.name)
    raise SaliencyRLError("--resume needs the run: give --out RUN_DIR or --name NAME")


# ---------------------------------------------------------------------- run options
def add_run_options(
    parser: Options,
    *,
    out: str | None = None,
    name: str | None = None,
    resume: str | None = None,
    device: str | None = "auto",
    threads: bool = False,
    progress: bool = True,
) -> None:
    """The options a run of any command may take, spelled and meant the same everywhere.

    Args:
        parser: the command's parser (or an argument group of it).
        out, name, resume: the help of ``--out``, ``--name`` and ``--resume`` (what the
            directory holds and its default differ by command); None leaves the option out.
        device: the default of ``--device`` (auto, cpu or cuda); None: no ``--device``.
        threads: add ``--threads`` (torch's CPU threads; ``cli.main`` applies it before the
            command runs).
        progress: add ``--no-progress``.
    """
    if out is not None:
        parser.add_argument("--out", help=out)
    if name is not None:
        parser.add_argument("--name", help=name)
    if resume is not None:
        parser.add_argument("--resume", action="store_true", help=resume)
    if device is not None:
        parser.add_argument(
            "--device",
            choices=("auto", "cpu", "cuda"),
            default=device,
            help=f"where to compute: auto (CUDA if present), cpu or cuda (default: {device})",
        )
    if threads:
        parser.add_argument(
            "--threads", type=positive_int, help="torch CPU threads (default: torch's, the cores)"
        )
    if progress:
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")


# ---------------------------------------------------------------------- config dataclass options
FIELD_DEFAULT = object()
"""``unset=FIELD_DEFAULT``: an option left out stores the dataclass field's default."""


def add_pair_pretraining_options(
    parser: argparse.ArgumentParser, config_cls: type, flags: Mapping[str, str] | None = None
) -> None:
    """The options of a pretraining on Atari frame pairs (pretrain-attention,
    pretrain-transporter): the datasets, then every field of its config dataclass."""
    parser.add_argument("dataset", nargs="+", help="dataset directories (1+ games)")
    hints = typing.get_type_hints(config_cls)
    non_negative = {"seed", *config_cls().non_negative_fields()}
    add_dataclass_options(
        parser,
        config_cls,
        flags={"learning_rate": "--lr", **(flags or {})},
        types={
            name: non_negative_int if name in non_negative else positive_int
            for name, hint in hints.items()
            if hint is int
        },
        unset=FIELD_DEFAULT,
    )


def run_pair_pretraining(
    pretrain: Any, config_cls: type, args: argparse.Namespace, tag: str
) -> str:
    """Run a pair pretraining (``pretrain_attention`` / ``pretrain_transporter``) with the
    options of :func:`add_pair_pretraining_options`; returns its checkpoint directory,
    ``--out`` or ``runs/<datasets>__<tag>__<seed>``."""
    names = "+".join(os.path.basename(os.path.normpath(d)) for d in args.dataset)
    out = args.out or os.path.join("runs", f"{names}__{tag}__{args.seed}")
    config = config_cls(**given(args, *(field.name for field in dataclasses.fields(config_cls))))
    pretrain(
        args.dataset,
        out,
        args.steps,
        config=config,
        **given(args, "progress", "resume", "device"),
    )
    return out


def add_dataclass_options(
    parser: Options,
    config_cls: type,
    *,
    fields: Sequence[str] | None = None,
    skip: Collection[str] = (),
    flags: Mapping[str, str] | None = None,
    types: Mapping[str, Callable[[str], Any]] | None = None,
    choices: Mapping[str, Sequence[Any]] | None = None,
    helps: Mapping[str, str] | None = None,
    shown: Mapping[str, Any] | None = None,
    unset: Any = None,
) -> list[str]:
    """Add a config dataclass's fields as options; return the fields added, in order.

    A field ``total_steps: int = 100`` followed by the string ``\"\"\"Agent steps.\"\"\"`` in the
    class body becomes ``--total-steps N`` with help ``Agent steps. (default: 100)`` and
    dest ``total_steps``. The annotation gives the value type: ``int``, ``float``, ``str``;
    ``bool`` becomes ``--x / --no-x``; ``tuple[float, float]`` takes 2 values and
    ``tuple[int, ...]`` one or more (stored as a tuple); ``Literal["a", "b"]`` the choices;
    ``X | None`` is read as ``X``.

    Args:
        parser: a parser or an argument group.
        config_cls: the dataclass.
        fields: the fields to add, in this order (default: all, in the class's order).
        skip: fields to leave out.
        flags: field -> flag where the flag is not the field's name (``{"learning_rate":
            "--lr"}``).
        types: field -> value type where the annotation's is too loose (``positive_int``).
        choices: field -> the valid values of a field annotated ``str``.
        helps: field -> help in the command's words, where the docstring speaks to Python
            readers (names of module constants, fields instead of flags); the default is
            still appended.
        shown: named configs (presets) whose values the help gives as the default, where the
            command fills unset options from a preset; default: the dataclass defaults.
        unset: what an option left out stores: None (default; a command that fills unset
            fields from a preset passes on what is not None), ``argparse.SUPPRESS`` (no
            attribute) or :data:`FIELD_DEFAULT` (the field's default).

    Raises:
        TypeError: ``config_cls`` is not a dataclass, a name is not one of its fields, or a
            field's annotation has no option form.
    """
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"{config_cls!r} is not a dataclass")
    every = {f.name: f for f in dataclasses.fields(config_cls)}
    names = list(fields) if fields is not None else list(every)
    flags, types, choices, helps = (dict(m or {}) for m in (flags, types, choices, helps))
    unknown = set(names).union(skip, flags, types, choices, helps) - set(every)
    if unknown:
        raise TypeError(
            f"{config_cls.__name__} has no fields {sorted(unknown)}; its fields: {list(every)}"
        )
    hints = typing.get_type_hints(config_cls)
    docs = field_docs(config_cls)
    added = []
    for name in names:
        if name in skip:
            continue
        field = every[name]
        kwargs = _option_kwargs(config_cls.__name__, name, hints[name])
        if name in types:
            kwargs["type"] = types[name]
        if name in choices:
            kwargs["choices"] = tuple(choices[name])
        kwargs["default"] = _field_default(field) if unset is FIELD_DEFAULT else unset
        help_text = helps[name] if name in helps else docs.get(name, "").replace("``", "")
        default = _shown_default(name, field, shown)
        if default:
            help_text = f"{help_text} (default: {default})" if help_text else f"default: {default}"
        kwargs["help"] = help_text.replace("%", "%%")  # argparse %-formats help
        flag = flags.get(name, "--" + name.replace("_", "-"))
        if name in flags and kwargs.get("action") is not argparse.BooleanOptionalAction:
            kwargs["metavar"] = flag.lstrip("-").replace("-", "_").upper()  # --lr LR
        parser.add_argument(flag, dest=name, **kwargs)
        added.append(name)
    return added


@functools.cache
def field_docs(config_cls: type) -> dict[str, str]:
    """Field name -> the docstring under it in the class body (base classes' included)."""
    docs: dict[str, str] = {}
    for cls in reversed(config_cls.__mro__):
        if cls is object or not dataclasses.is_dataclass(cls):
            continue
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):  # made at run time, no source file
            continue
        body = ast.parse(textwrap.dedent(source)).body[0]
        if not isinstance(body, ast.ClassDef):
            continue
        for statement, following in zip(body.body, body.body[1:], strict=False):
            if (
                isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                text = " ".join(inspect.cleandoc(following.value.value).split())
                docs[statement.target.id] = text
    return docs


class _StoreTuple(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        setattr(namespace, self.dest, tuple(values))


def _option_kwargs(owner: str, name: str, annotation: Any) -> dict[str, Any]:
    """add_argument's type, nargs, choices or action for a field of type ``annotation``."""
    origin, params = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, UnionType) and type(None) in params:
        rest = [p for p in params if p is not type(None)]
        if len(rest) == 1:
            return _option_kwargs(owner, name, rest[0])
    if annotation is bool:
        return {"action": argparse.BooleanOptionalAction}
    if annotation in (int, float, str):
        return {"type": annotation}
    if origin is typing.Literal:
        kinds = {type(p) for p in params}
        if len(kinds) == 1 and kinds <= {int, float, str}:
            return {"type": kinds.pop(), "choices": params}
    if origin is tuple and params:
        if len(params) == 2 and params[1] is Ellipsis and params[0] in (int, float, str):
            return {"type": params[0], "nargs": "+", "action": _StoreTuple}
        if Ellipsis not in params and len(set(params)) == 1 and params[0] in (int, float, str):
            return {"type": params[0], "nargs": len(params), "action": _StoreTuple}
    raise TypeError(
        f"{owner}.{name}: no option for type {annotation!r}; valid: int, float, str, bool, "
        "Literal[...], tuple[T, ...], tuple[T, T], and these | None"
    )


def _field_default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _shown_default(name: str, field: dataclasses.Field, shown: Mapping[str, Any] | None) -> str:
    """The default in words: ``0.99``, or per preset ``visarl 0.0001, drq 0.001`` where they differ."""
    if shown is None:
        value = _field_default(field)
        return "" if value is None else _format_value(value)
    values = {preset: _format_value(getattr(config, name)) for preset, config in shown.items()}
    if len(set(values.values())) == 1:
        return next(iter(values.values()))
    return ", ".join(f"{preset} {value}" for preset, value in values.items())


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return format(value, "g")
    if isinstance(value, tuple | list):
        return " ".join(_format_value(v) for v in value)
    return str(value)
