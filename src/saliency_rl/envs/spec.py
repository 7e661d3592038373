"""Environment spec strings: ``suite:name``, e.g. ``dmc:cartpole-swingup``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from saliency_rl.errors import EnvSpecError

DISTRACTOR_MODES = ("color_easy", "color_hard", "video_easy", "video_hard")
"""Visual distractor modes (``saliency_rl.envs.distractors``); ``MODE:PATH`` takes DMC-GB's
own data from PATH instead of our procedural sets (``saliency_rl.envs.dmcgb``)."""
OBJECTS_MODE = "objects"
"""Metaworld only: copies of the task's object on the table (``envs.distractor_objects``)."""

SUITES = ("dmc", "metaworld", "atari", "fake")  # fake: a tiny test environment
EXAMPLES = "dmc:cartpole-swingup, metaworld:drawer-open, atari:MsPacman"


@dataclass(frozen=True)
class EnvSpec:
    """A parsed spec string."""

    suite: str
    """One of SUITES."""
    name: str
    """The task within the suite, e.g. ``cartpole-swingup``, ``drawer-open``, ``MsPacman``."""

    def __str__(self) -> str:
        return f"{self.suite}:{self.name}"


@dataclass(frozen=True)
class FrameOptions:
    """How an env draws and steps its frames: what every suite's ``make(name, frames,
    **options)`` takes from ``make_env`` (which checks the values and fills the defaults)."""

    image_size: int = 64
    """Square frame side in pixels."""
    action_repeat: int = 1
    """Times each action is applied; rewards are summed."""
    episode_length: int | None = None
    """Steps (after action repeat) before truncation; None: the suite's own limit."""
    seed: int | None = None
    """Seeds the first reset (task randomness, object positions); None draws a seed."""
    camera: str | int | None = None
    """Camera name or index; None: the suite's default camera."""
    render_quality: str = "fast"
    """``fast`` offscreen rendering or ``default`` (the model's own visual settings)."""


def parse_spec(spec: str) -> EnvSpec:
    """Split ``suite:name``; raise EnvSpecError naming the valid suites otherwise."""
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise EnvSpecError(f"env spec {spec!r} is not of the form SUITE:TASK (e.g. {EXAMPLES})")
    suite, name = (part.strip() for part in spec.split(":"))
    if suite not in SUITES:
        raise EnvSpecError(
            f"unknown suite {suite!r} in env spec {spec!r}{suggest(suite, SUITES)}; "
            f"valid suites: {', '.join(SUITES)}"
        )
    if not name:
        raise EnvSpecError(f"env spec {spec!r} names no task (e.g. {EXAMPLES})")
    return EnvSpec(suite, name)


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the closest choices, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.5)
    if not close:
        close = [c for c in choices if word.lower() in c.lower() or c.lower() in word.lower()][:3]
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def unknown_task(suite: str, name: str, valid: Iterable[str]) -> EnvSpecError:
    """The error for a task name the suite does not have, with close matches."""
    valid = sorted(valid)
    shown = (
        ", ".join(valid)
        if len(valid) <= 12
        else ", ".join(valid[:12]) + f", ... ({len(valid)} in all)"
    )
    return EnvSpecError(
        f"unknown {suite} task {name!r}{suggest(name, valid)}; valid tasks: {shown}"
    )


@dataclass(frozen=True)
class DistractorSource:
    """A distractor mode and, for DMC-GB's data, the path it was given."""

    mode: str
    """One of ``DISTRACTOR_MODES``."""
    path: Path | None
    """None: our procedural set; else the folder or file of the user's data."""


def parse_distractor(text: str) -> DistractorSource:
    """``MODE`` or ``MODE:PATH`` (not ``clean``); EnvSpecError naming the valid forms.

    Only the form is checked here; the files are read when an env is built
    (``saliency_rl.envs.dmcgb``).
    """
    modes = (*DISTRACTOR_MODES, OBJECTS_MODE)
    mode, _, path = text.partition(":")
    if mode not in modes:
        raise EnvSpecError(
            f"unknown distractor {text!r}; valid: clean, {', '.join(modes)} (our own sets; "
            "objects: metaworld only), or "
            "MODE:PATH for DMC-GB's data (e.g. video_hard:DIR with DIR/video_hard/*.mp4 or "
            "clips directly in DIR; color_hard:DIR with DIR/color_hard.json, or the .json file)"
        )
    if ":" in text and not path:
        raise EnvSpecError(f"distractor {text!r} names no path after ':'")
    if mode == OBJECTS_MODE and path:
        raise EnvSpecError(f"distractor {OBJECTS_MODE!r} takes no path, got {text!r}")
    return DistractorSource(mode, Path(path).expanduser() if path else None)


def check_distractor(mode: str | None) -> str | None:
    """The mode (``MODE`` or ``MODE:PATH``), or None for ``None`` / ``"clean"``.

    EnvSpecError listing the valid forms; a path's files are checked when the env is built.
    """
    if mode is None or mode == "clean":
        return None
    parse_distractor(mode)
    return mode


def distractor_name(mode: str | None) -> str:
    """A mode's name in file names and tables: ``clean``, ``video_hard`` (ours), or
    ``video_hard@dmcgb`` for ``video_hard:/data/dmcgb`` (the data's folder or file name)."""
    if check_distractor(mode) is None:
        return "clean"
    source = parse_distractor(mode)
    if source.path is None:
        return source.mode
    return f"{source.mode}@{source.path.resolve().stem or 'files'}"


def distractor_set(mode: str | None) -> str | None:
    """Where a mode's frames come from, for result files; None when clean."""
    if check_distractor(mode) is None:
        return None
    source = parse_distractor(mode)
    if source.path is None:
        return (
            "saliency-rl's own (procedural colours and backgrounds); not comparable with "
            "published DMC-GB numbers, which use real video clips"
        )
    return (
        f"files from {source.path} (DMC-GB's protocol: saliency_rl.envs.dmcgb); comparable "
        "with published DMC-GB numbers when these are DMC-GB's own clips or colour lists"
    )
