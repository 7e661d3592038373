"""Environments behind one constructor: ``make_env("dmc:cartpole-swingup")``.

Every environment returns observations ``{"rgb": uint8 (C*k, H, W), "proprio": float32 (d,)}``
(``proprio`` where the suite has it; C is 3, or 1 for grey Atari frames) and puts the pixel
coordinates of the task-relevant bodies in ``info["salient_points"]``: float32 (N, 2) as
(x, y), x to the right and y down, in the newest frame, named by
``env.unwrapped.salient_point_names`` (gymnasium wrappers do not forward attributes; use
``env.unwrapped`` or ``env.get_wrapper_attr``). Points outside the image (or hidden behind the camera: NaN) are kept, so the
array always has N rows.

MuJoCo suites render through EGL unless the user chose another backend with ``MUJOCO_GL``
(``osmesa`` or ``glfw``) before importing saliency_rl; see saliency_rl/__init__.py.
"""

from __future__ import annotations

import gymnasium as gym

from saliency_rl.envs.presets import PRESETS, preset_options
from saliency_rl.envs.spec import (
    DISTRACTOR_MODES,
    OBJECTS_MODE,
    SUITES,
    EnvSpec,
    FrameOptions,
    check_distractor,
    parse_spec,
)
from saliency_rl.envs.wrappers import FrameStack
from saliency_rl.errors import EnvSpecError

__all__ = ["make_env", "task_names", "parse_spec", "EnvSpec", "PRESETS", "SUITES"]


_SUITE_EXTRAS = {"dmc": "dmc", "metaworld": "metaworld", "atari": "atari"}


def _suite_module(suite: str):
    # Imported lazily: a user of one suite needs only that simulator installed.
    try:
        if suite == "dmc":
            from saliency_rl.envs import dmc as module
        elif suite == "metaworld":
            from saliency_rl.envs import metaworld as module
        elif suite == "atari":
            from saliency_rl.envs import atari as module
        else:
            from saliency_rl.envs import fake as module
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] == "saliency_rl":
            raise
        raise EnvSpecError(
            f"the {suite} suite needs {error.name}, which is not installed: "
            f"pip install 'saliency-rl[{_SUITE_EXTRAS.get(suite, 'all')}]'"
        ) from None
    return module


def task_names(suite: str) -> list[str]:
    """Every task name the suite accepts after ``suite:``."""
    if suite not in SUITES:
        raise EnvSpecError(f"unknown suite {suite!r}; valid suites: {', '.join(SUITES)}")
    return _suite_module(suite).task_names()


def make_env(
    spec: str,
    *,
    image_size: int | None = None,
    frame_stack: int | None = None,
    action_repeat: int | None = None,
    episode_length: int | None = None,
    seed: int | None = None,
    camera: str | int | None = None,
    render_quality: str = "fast",
    preset: str | None = None,
    distractor: str | None = None,
    **suite_options,
) -> gym.Env:
    """Build a pixel environment from a spec string.

    Args:
        spec: ``dmc:<domain>-<task>``, ``metaworld:<task>`` or ``atari:<Game>``.
        image_size: square frame size in pixels (64; Atari 84).
        frame_stack: frames stacked along the channel axis (1; Atari 4).
        action_repeat: times each action is applied, rewards summed (1). For Atari this is
            on top of the standard frame skip of 4.
        episode_length: environment steps (after action repeat) before truncation; the
            suite's own limit when None.
        seed: seeds the task's randomness (initial states, object and goal positions).
        camera: camera name or index; each suite has a sensible default.
        render_quality: ``"fast"`` (default) or ``"default"`` (the suite's own visual settings).
        preset: a name from ``PRESETS`` filling the options left unset (e.g. ``dmc-100k``).
        distractor: ``color_easy``, ``color_hard``, ``video_easy`` or ``video_hard`` (dmc and
            metaworld only; our own distractor sets, see ``saliency_rl.envs.distractors``),
            ``MODE:PATH`` for DMC-GB's data, or ``objects`` (metaworld: copies of the
            task's object on the table);
            None or ``"clean"``: none. Applied to every frame, stacked ones included.
        **suite_options: options only one suite has (Atari: ``episodic_life``,
            ``clip_rewards``, ``grayscale``, ``noop_max``, ``frame_skip``, ``sticky_actions``,
            ``full_action_space``).

    Raises:
        EnvSpecError: unknown suite, task, preset, camera, distractor, or an option value out
            of range.
    """
    parsed = parse_spec(spec)
    distractor = check_distractor(distractor)  # None for clean
    if distractor is not None:
        if parsed.suite not in ("dmc", "metaworld"):
            raise EnvSpecError(
                f"distractor {distractor!r} needs a MuJoCo suite (dmc or metaworld), not "
                f"{parsed.suite}; valid distractors there: {', '.join(DISTRACTOR_MODES)}"
            )
        if distractor == OBJECTS_MODE and parsed.suite != "metaworld":
            raise EnvSpecError(
                f"distractor {OBJECTS_MODE!r} copies a Meta-World task's object onto its table: "
                f"it needs a metaworld task, not {parsed.suite}"
            )
    options = dict(
        image_size=image_size,
        frame_stack=frame_stack,
        action_repeat=action_repeat,
        episode_length=episode_length,
        camera=camera,
    )
    if preset is not None:
        for key, value in preset_options(preset, parsed).items():
            if options.get(key) is None and key not in suite_options:
                if key in options:
                    options[key] = value
                else:
                    suite_options[key] = value
    atari = parsed.suite == "atari"
    defaults = {
        "image_size": 84 if atari else 64,
        "frame_stack": 4 if atari else 1,
        "action_repeat": 1,
    }
    image_size, frame_stack, action_repeat = (
        defaults[key] if options[key] is None else options[key] for key in defaults
    )
    for name, value, low in (
        ("image_size", image_size, 16),
        ("frame_stack", frame_stack, 1),
        ("action_repeat", action_repeat, 1),
    ):
        if not isinstance(value, int) or value < low:
            raise EnvSpecError(f"{name} must be an integer >= {low}, got {value!r}")
    if options["episode_length"] is not None and options["episode_length"] < 1:
        raise EnvSpecError(f"episode_length must be >= 1, got {options['episode_length']!r}")

    frames = FrameOptions(
        image_size, action_repeat, options["episode_length"], seed, options["camera"],
        render_quality,
    )  # fmt: skip
    env = _suite_module(parsed.suite).make(parsed.name, frames, **suite_options)
    if distractor is not None:
        from saliency_rl.envs.distractors import DistractorWrapper

        try:
            env = DistractorWrapper(env, distractor, seed=seed)  # inside the frame stack
        except BaseException:
            env.close()
            raise
    if frame_stack > 1:
        env = FrameStack(env, frame_stack)
    return env
