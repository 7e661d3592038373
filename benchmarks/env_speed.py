"""Environment steps per second (step + render) of our adapters against each suite's own rendering.

For every task, in one run on one machine:
- ``suite default``: the suite's own way to get a frame of the same size from the same
  camera (dm_control ``physics.render``; Meta-World's ``render_mode="rgb_array"``; for
  Atari, gymnasium's ``AtariPreprocessing`` + ``FrameStackObservation``);
- ``ours fast``: ``make_env(spec)`` (the default ``render_quality="fast"``);
- ``ours default quality``: ``make_env(spec, render_quality="default")`` (MuJoCo tasks).
Random actions, action repeat 1, resets included, construction and warm-up excluded.

Usage:
    python benchmarks/env_speed.py [--size 64] [--steps 300] [--out benchmarks/results]
Writes env_speed.json and env_speed.md (machine, versions, date, command) under --out.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from machine_info import cpu_model, package_versions

from saliency_rl.data.atomic import atomic_write_json, atomic_write_text
from saliency_rl.envs import make_env  # sets MUJOCO_GL=egl unless the user chose a backend

DMC_TASKS = ["walker-walk", "cartpole-swingup", "ball_in_cup-catch", "finger-spin"]
METAWORLD_TASKS = ["reach", "drawer-open", "faucet-open", "door-open"]
ATARI_GAMES = ["MsPacman", "Pong"]
TARGET_SPEEDUP = 4.0  # issue 2: fast rendering at least 4x the suite default on MuJoCo tasks


def steps_per_second(
    reset: Callable[[], object], step: Callable[[], bool], steps: int, warmup: int = 5
) -> float:
    """Time ``steps`` calls of ``step`` (which returns True at an episode's end)."""
    reset()
    for _ in range(warmup):
        if step():
            reset()
    start = time.perf_counter()
    for _ in range(steps):
        if step():
            reset()
    return steps / (time.perf_counter() - start)


def gym_steps_per_second(env, steps: int, render: bool = False) -> float:
    """Random-action steps/s of a gymnasium env (``render``: also call ``env.render()``); closes it."""
    env.action_space.seed(0)

    def step() -> bool:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if render:
            env.render()
        return terminated or truncated

    try:
        return steps_per_second(lambda: env.reset(seed=0), step, steps)
    finally:
        env.close()


def ours(spec: str, steps: int, size: int, **options) -> float:
    return gym_steps_per_second(make_env(spec, image_size=size, seed=0, **options), steps)


def dmc_default(task: str, steps: int, size: int) -> float:
    from dm_control import suite

    domain, name = task.split("-", 1)
    camera = make_env(f"dmc:{task}", image_size=size).unwrapped.camera
    env = suite.load(domain, name, task_kwargs={"random": 0})
    spec = env.action_spec()
    rng = np.random.default_rng(0)

    def step() -> bool:
        time_step = env.step(rng.uniform(spec.minimum, spec.maximum))
        env.physics.render(size, size, camera_id=camera)
        return time_step.last()

    return steps_per_second(env.reset, step, steps)


def metaworld_default(task: str, steps: int, size: int) -> float:
    import gymnasium as gym
    import metaworld  # noqa: F401  (registers the Meta-World environments)

    from saliency_rl.envs.metaworld import DEFAULT_CAMERA

    env = gym.make(
        "Meta-World/MT1",
        env_name=f"{task}-v3",
        seed=0,
        render_mode="rgb_array",
        camera_name=DEFAULT_CAMERA,
        width=size,
        height=size,
    )
    return gym_steps_per_second(env, steps, render=True)


def atari_default(game: str, steps: int, size: int) -> float:
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    env = gym.make(f"ALE/{game}-v5", frameskip=1, repeat_action_probability=0.0)
    env = gym.wrappers.AtariPreprocessing(
        env, noop_max=30, frame_skip=4, screen_size=size, grayscale_obs=True
    )
    env = gym.wrappers.FrameStackObservation(env, 4)
    return gym_steps_per_second(env, steps)


def machine() -> dict:
    packages = ["saliency-rl", "mujoco", "dm-control", "metaworld", "gymnasium", "ale-py", "numpy"]
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "MUJOCO_GL": os.environ.get("MUJOCO_GL"),
        "gl_renderer": _gl_renderer(),
        "versions": package_versions(packages),
    }


def _gl_renderer() -> str:
    """The OpenGL renderer MuJoCo draws with (e.g. Mesa's llvmpipe on a CPU)."""
    try:
        import mujoco
        from OpenGL import GL

        context = mujoco.GLContext(16, 16)
        context.make_current()
        try:
            return GL.glGetString(GL.GL_RENDERER).decode()
        finally:
            context.free()
    except Exception as error:  # a benchmark still runs without this detail
        return f"unknown ({type(error).__name__})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=64, help="image size (64)")
    parser.add_argument("--steps", type=int, default=300, help="timed steps of our adapters (300)")
    parser.add_argument(
        "--default-steps",
        type=int,
        default=100,
        help="timed steps of the slow suite defaults (100)",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    rows = []
    jobs = [("dmc", t, dmc_default) for t in DMC_TASKS] + [
        ("metaworld", t, metaworld_default) for t in METAWORLD_TASKS
    ]
    for suite, task, default in jobs:
        spec = f"{suite}:{task}"
        row = {
            "spec": spec,
            "suite_default": default(task, args.default_steps, args.size),
            "ours_fast": ours(spec, args.steps, args.size),
            "ours_default_quality": ours(
                spec, args.default_steps, args.size, render_quality="default"
            ),
        }
        row["speedup"] = row["ours_fast"] / row["suite_default"]
        rows.append(row)
        print(
            f"{spec:28s} default {row['suite_default']:7.1f}  ours {row['ours_fast']:7.1f}  x{row['speedup']:.1f}",
            flush=True,
        )
    for game in ATARI_GAMES:
        spec = f"atari:{game}"
        row = {
            "spec": spec,
            "suite_default": atari_default(game, args.steps, 84),
            "ours_fast": ours(spec, args.steps, 84),
            "ours_default_quality": None,
        }
        row["speedup"] = row["ours_fast"] / row["suite_default"]
        rows.append(row)
        print(
            f"{spec:28s} default {row['suite_default']:7.1f}  ours {row['ours_fast']:7.1f}  x{row['speedup']:.2f}",
            flush=True,
        )

    command = "python " + " ".join([str(Path(sys.argv[0]))] + sys.argv[1:])
    result = {
        "benchmark": "env_speed",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "image_size": args.size,
        "machine": machine(),
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "env_speed.json", result)
    atomic_write_text(args.out / "env_speed.md", render_markdown(result))
    print(f"wrote {args.out / 'env_speed.md'}")


def render_markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Environment speed: step + render, steps/s",
        "",
        f"- date: {result['date']}",
        f"- command: `{result['command']}` (or `make bench`)",
        f"- machine: {m['cpu']}, {m['cores']} cores, no GPU; Python {m['python']}; MUJOCO_GL={m['MUJOCO_GL']} ({m['gl_renderer']})",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        f"- MuJoCo tasks at {result['image_size']}x{result['image_size']}, Atari at 84x84 grey with 4 stacked frames; "
        "random actions, action repeat 1, one process.",
        "",
        "| task | suite default | ours (fast) | ours (render_quality=default) | speed-up | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in result["rows"]:
        mujoco = not row["spec"].startswith("atari")
        target = (
            f"≥ {TARGET_SPEEDUP:.0f}x: {'met' if row['speedup'] >= TARGET_SPEEDUP else 'MISSED'}"
            if mujoco
            else "none (no rendering to speed up)"
        )
        quality = f"{row['ours_default_quality']:.1f}" if row["ours_default_quality"] else "n/a"
        lines.append(
            f"| {row['spec']} | {row['suite_default']:.1f} | {row['ours_fast']:.1f} | {quality} | "
            f"{row['speedup']:.2f}x | {target} |"
        )
    lines += [
        "",
        "Suite default: dm_control `physics.render(size, size, camera_id)` on the same camera; Meta-World "
        '`render_mode="rgb_array"` with the same camera and size; Atari: gymnasium `AtariPreprocessing` + '
        "`FrameStackObservation`. Ours (fast): offscreen buffer sized to the image, no shadows, reflections or "
        "multisampling (`src/saliency_rl/envs/mujoco_render.py`).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
