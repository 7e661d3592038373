"""Evaluation of a run directory: its policy under distractors, with videos.

``evaluate_run`` evaluates a finished run (``saliency-rl evaluate RUN``): it rebuilds the
run's env from config.json, optionally with one of our own distractor sets
(``saliency_rl.envs.distractors``; their figures are not comparable with published
DMC-GB numbers, which use real video clips), loads the policy through the trainer's
``load_policy`` found in :data:`POLICY_LOADERS`, runs it with the rollout loop of
``saliency_rl.algos.rollout`` and writes ``eval_<distractor|clean>.json`` and MP4 videos with
the policy's saliency map beside each frame.

This module sits above the algorithms (it imports their policies); they import nothing
from it.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from saliency_rl.algos.rollout import (
    EVAL_SEED,
    EpisodeResult,
    Policy,
    run_episodes,
    run_episodes_side_by_side,
    summarize,
)
from saliency_rl.data.atomic import public_mode

VIDEO_DIR = "videos"
VIDEO_SIZE = 256
"""Height in pixels of each panel of a video (frames are upscaled with crisp pixels)."""


# ---------------------------------------------------------------------- run directories
def eval_file_name(distractor: str | None) -> str:
    """``eval_<distractor>.json``, ``eval_clean.json`` without one; a mode with DMC-GB's data
    (``video_hard:/data/dmcgb``) is named after the data (``eval_video_hard@dmcgb.json``)."""
    from saliency_rl.envs.spec import distractor_name

    return f"eval_{distractor_name(distractor)}.json"


POLICY_LOADERS = {
    "sac": "saliency_rl.algos.sac_policy",
    "bc": "saliency_rl.algos.bc_trainer",
    "a2c": "saliency_rl.algos.a2c_trainer",
    "acktr": "saliency_rl.algos.a2c_trainer",  # ACKTR is trained by A2C's trainer
}
"""The module whose ``load_policy(run_dir, device)`` loads each algorithm's policy."""


def load_run_policy(run_dir: str | Path, device: str = "cpu") -> tuple[dict[str, Any], Policy]:
    """config.json and the policy of a finished run, through its trainer's ``load_policy``.

    Raises:
        RunError: not a run, not finished, or of an algorithm without ``load_policy``.
    """
    from saliency_rl.runs import CONFIG_FILE, EVAL_FILE, RunError, read_json

    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise RunError(f"{run_dir} is not a run directory (it has no {CONFIG_FILE})")
    config = read_json(run_dir / CONFIG_FILE, "run configuration")
    missing = [key for key in ("algo", "env") if key not in config]
    if missing:
        raise RunError(f"{run_dir / CONFIG_FILE} lacks {', '.join(missing)}: not a training run")
    if not (run_dir / EVAL_FILE).is_file():
        raise RunError(
            f"{run_dir} has not finished (no {EVAL_FILE}); resume it with "
            f"`saliency-rl train {config['algo']} --resume --out {run_dir}` first"
        )
    algo = str(config["algo"])
    if algo not in POLICY_LOADERS:
        raise RunError(
            f"{run_dir} is a {algo!r} run, which saliency-rl evaluate cannot load; it "
            f"evaluates runs of {', '.join(evaluable_algos())}"
        )
    return config, importlib.import_module(POLICY_LOADERS[algo]).load_policy(run_dir, device)


def evaluable_algos() -> list[str]:
    """Algorithms whose runs ``evaluate_run`` can load (sac, bc, a2c, acktr)."""
    return sorted(POLICY_LOADERS)


def evaluate_run(
    run_dir: str | Path,
    episodes: int = 10,
    distractor: str | None = None,
    video: int | bool = 0,
    seed: int = EVAL_SEED,
    device: str = "cpu",
    progress: bool = False,
    video_size: int = VIDEO_SIZE,
    episode_length: int | None = None,
) -> dict[str, Any]:
    """Evaluate a finished run's deterministic policy; writes ``eval_<mode>.json`` in it.

    Args:
        run_dir: a run directory (config.json with ``algo``, ``env``, ``env_options``).
        episodes: episodes to run; episode i is reset with ``seed + i``.
        distractor: None / ``"clean"``, one of our own distractor sets ``color_easy``,
            ``color_hard``, ``video_easy``, ``video_hard`` (MuJoCo suites only; not
            comparable with published DMC-GB figures), or ``MODE:PATH`` with DMC-GB's own
            clips or colour lists (``saliency_rl.envs.dmcgb``).
        video: how many episodes (the first ones) to record as MP4 under ``videos/``
            (True: one): the frame the policy saw, upscaled to ``video_size`` pixels high,
            and beside it the policy's saliency map over that frame, where it has one.
        seed: seed of the first episode (``EVAL_SEED`` by default, the same for every run).
        device: ``auto``, ``cpu`` or ``cuda`` for the policy.
        progress: a progress bar over episodes.
        video_size: height in pixels of the video's panels.
        episode_length: cut episodes after this many steps (recorded in the result); None:
            the run's own episode length.

    Returns:
        What was written to ``eval_<mode>.json``: ``return_mean``, ``return_std``,
        ``success_rate`` (Meta-World), ``per_episode``, ``videos``, ...

    Raises:
        RunError: not a run, unfinished, or an algorithm that cannot be evaluated.
        EnvSpecError: an unknown distractor, or a distractor on a suite without MuJoCo.
    """
    from saliency_rl.envs import make_env, parse_spec
    from saliency_rl.envs.spec import (
        DISTRACTOR_MODES,
        check_distractor,
        distractor_name,
        distractor_set,
    )
    from saliency_rl.envs.wrappers import frame_channels
    from saliency_rl.errors import EnvSpecError
    from saliency_rl.runs import RunError, article, now, write_json

    run_dir = Path(run_dir)
    if episodes < 1:
        raise RunError(f"episodes must be at least 1, got {episodes}")
    distractor = check_distractor(distractor)  # None for clean
    config, policy = load_run_policy(run_dir, device)
    spec = str(config["env"])
    suite = parse_spec(spec).suite
    if distractor is not None and suite not in ("dmc", "metaworld"):
        raise EnvSpecError(
            f"{run_dir} is {article(suite)} {suite} run; the distractors ({', '.join(DISTRACTOR_MODES)}) "
            "need a MuJoCo suite (dmc or metaworld): evaluate it clean"
        )
    options = dict(config.get("env_options") or {})
    for key in ("seed", "distractor"):  # ours replace the run's
        options.pop(key, None)
    if suite == "atari" and "preset" not in options:
        options["preset"] = "atari-eval"  # whole games, unclipped scores (as A2C evaluates)
    if episode_length is not None:
        if episode_length < 1:
            raise RunError(f"episode_length must be at least 1, got {episode_length}")
        options["episode_length"] = episode_length
    env = make_env(spec, **options, distractor=distractor, seed=seed)
    name = distractor_name(distractor)
    recorder = _VideoRecorder(
        run_dir / VIDEO_DIR,
        name,
        int(video),
        policy,
        frame_channels(env),
        video_size,
        fps=float(env.unwrapped.metadata.get("render_fps") or 25),
    )
    try:
        results, steps_per_second = run_episodes(
            env, policy, episodes, seed, progress, deterministic=True, observe=recorder
        )
        recorder.close()
    finally:
        recorder.abort()  # an interrupted episode leaves no half-written video
        env.close()
    summary = summarize(results)
    result = {
        "run": str(run_dir),
        "algo": config["algo"],
        "method": config.get("method"),
        "env": spec,
        "env_options": options,
        "distractor": name,
        "distractor_source": distractor,
        "distractor_set": distractor_set(distractor),
        "policy": "deterministic",
        "seed": seed,
        **summary,
        "steps_per_second": round(steps_per_second, 1),
        "videos": [str(Path(VIDEO_DIR) / p.name) for p in recorder.written],
        "created": now(),
    }
    write_json(run_dir / eval_file_name(distractor), result)
    return result


class _VideoRecorder:
    """``observe`` hook of ``run_episodes``: streams the first episodes to MP4 files.

    Each video frame is the newest frame of the observation, upscaled with crisp pixels,
    and (when the policy returns a map) the same frame with the map overlaid beside it.
    Files are written under a hidden name and renamed when complete.
    """

    def __init__(
        self,
        directory: Path,
        name: str,
        episodes: int,
        policy: Policy,
        channels: int,
        size: int,
        fps: float,
    ) -> None:
        self.directory, self.name, self.episodes = directory, name, episodes
        self.policy, self.channels, self.size, self.fps = policy, channels, size, fps
        self.written: list[Path] = []
        self._writer: Any = None
        self._episode = -1
        self._tmp: Path | None = None

    def __call__(self, episode: int, obs: dict) -> None:
        if episode >= self.episodes:
            self.close()
            return
        if episode != self._episode:
            self.close()
            self._open(episode)
        self._writer.append_data(self._frame(obs))

    def _open(self, episode: int) -> None:
        import imageio.v2 as imageio

        self.directory.mkdir(parents=True, exist_ok=True)
        self._episode = episode
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".mp4")
        os.close(fd)
        self._tmp = Path(tmp)
        # yuv420p plays everywhere; sizes are multiples of 16 already (no resizing).
        self._writer = imageio.get_writer(
            tmp, fps=self.fps, codec="libx264", quality=8, macro_block_size=1,
            pixelformat="yuv420p", ffmpeg_log_level="error",
        )  # fmt: skip

    def _frame(self, obs: dict) -> np.ndarray:
        from saliency_rl.saliency.overlay import overlay

        frame = np.asarray(obs["rgb"])[-self.channels :]  # (C, H, W), the newest frame
        rgb = np.repeat(frame, 3, axis=0) if self.channels == 1 else frame
        panels = [rgb.transpose(1, 2, 0)]
        saliency = self.policy.saliency(obs) if hasattr(self.policy, "saliency") else None
        if saliency is not None:
            panels.append(overlay(frame, np.clip(np.asarray(saliency, np.float32), 0, 1)))
        image = np.concatenate(panels, axis=1)
        scale = max(1, self.size // image.shape[0])
        image = image.repeat(scale, axis=0).repeat(scale, axis=1)
        pad_h, pad_w = (-image.shape[0]) % 2, (-image.shape[1]) % 2  # yuv420p: even sizes
        return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)))

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)

    def close(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        path = self.directory / f"{self.name}_episode{self._episode}.mp4"
        public_mode(self._tmp)  # mkstemp makes it 0600; the video gets the umask's mode
        os.replace(self._tmp, path)
        self.written.append(path)


__all__ = [
    "EVAL_SEED",
    "EpisodeResult",
    "POLICY_LOADERS",
    "Policy",
    "evaluable_algos",
    "evaluate_run",
    "load_run_policy",
    "run_episodes",
    "run_episodes_side_by_side",
    "summarize",
]
