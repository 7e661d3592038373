"""``saliency-rl demo``: Algorithm 1 of ViSaRL end to end on a small default task.

Eight stages, each a library function, each writing under ``OUT``::

    [1/8] collect frames with a random policy      OUT/dataset/
    [2/8] annotate 10 frames (oracle or browser)   OUT/dataset/annotations/
    [3/8] train the saliency predictor (U-Net)     OUT/predictor/
    [4/8] label every frame with saliency          OUT/dataset/ (field "saliency")
    [5/8] pretrain MultiMAE on (RGB, saliency)     OUT/multimae/
    [6/8] train SAC on the frozen features         OUT/sac/  (a run directory)
    [7/8] evaluate clean and under a distractor    OUT/sac/eval_clean.json, eval_<mode>.json
    [8/8] write the report                         OUT/report/index.html, report.md

Resumable: a stage whose output is complete is skipped, so running the same command again
after an interruption continues where it stopped (pretraining and SAC from their latest
checkpoints). ``OUT/demo.json`` holds the settings and each stage's wall time.

Budgets are named presets (``DEMO_PRESETS``): ``cpu`` (the default; under 15 minutes on two
shared CPU cores), ``paper`` (ViSaRL's settings, for a GPU) and ``tiny`` (tests). ``scale``
multiplies every budget of the preset.
"""

from __future__ import annotations

import dataclasses
import datetime
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from saliency_rl import __version__
from saliency_rl.data.atomic import atomic_write_bytes, atomic_write_json
from saliency_rl.errors import SaliencyRLError

STAGES = (
    "collect frames with a random policy",
    "annotate frames",
    "train saliency predictor",
    "label the dataset with saliency",
    "pretrain MultiMAE on (RGB, saliency)",
    "train SAC on frozen MultiMAE features",
    "evaluate clean and under a distractor",
    "write the report",
)
STAGE_KEYS = ("collect", "annotate", "predictor", "label", "pretrain", "sac", "evaluate", "report")
"""Short names of the stages, for ``until``."""
STATE_FILE = "demo.json"
SAMPLE_EVERY = 20  # agent steps between the frames of the policy-saliency figures
# Budgets that `scale` multiplies.
SCALED_FIELDS = (
    "collect_episodes",
    "predictor_steps",
    "pretrain_steps",
    "sac_steps",
    "sac_init_steps",
    "eval_episodes",
)


class DemoError(SaliencyRLError):
    """The demo cannot start or continue: the message says why."""


@dataclass
class DemoConfig:
    """Every setting of the demo; stored in ``OUT/demo.json``."""

    env_spec: str = "dmc:cartpole-swingup"
    """Task: a DMC or Meta-World spec with an oracle (salient points)."""
    image_size: int = 64
    """Frame side in pixels (ViSaRL: 64)."""
    action_repeat: int | None = None
    """Simulator steps per agent step; None: the SAC preset's env preset's (ViSaRL DMC: the
    100k benchmark's per domain, 8 for cartpole; Meta-World: 1)."""
    frame_stack: int = 2
    """Frames per SAC observation; frozen features of each frame are concatenated."""
    episode_length: int | None = None
    """Agent steps per episode; None: the suite's (1000 simulator steps for DMC)."""
    collect_episodes: int = 4
    """Random-policy episodes collected for the predictor and MultiMAE."""
    annotate_frames: int = 10
    """Frames annotated (ViSaRL: 10 to 30 per task)."""
    predictor_model: str = "unet"
    """Saliency predictor: unet (fast) or picanet."""
    predictor_size: str = "small"
    """Named size of the predictor network (small, or tiny for tests)."""
    predictor_steps: int = 100
    """Optimiser steps of the predictor (saliency.fit default: 1500 for the U-Net)."""
    predictor_batch: int = 8
    """Augmented frames per predictor step."""
    multimae_size: str = "visarl"
    """MultiMAE named size (visarl, tiny); ``multimae_overrides`` change single fields."""
    multimae_overrides: dict[str, Any] = field(
        default_factory=lambda: dict(
            dim=128, depth=2, num_heads=4, decoder_dim=128, decoder_depth=1, decoder_heads=4
        )
    )
    """MultiMAE config fields to change; the CPU demo halves ViSaRL's width and depth so
    pretraining fits its budget (about 6x faster a step)."""
    pretrain_steps: int = 100
    """MultiMAE pretraining steps (ViSaRL-style full run: 10,000)."""
    pretrain_batch: int = 32
    """Frames per pretraining step."""
    sac_preset: str = "visarl"
    """SAC hyperparameter preset (ViSaRL Table VI); the fields below override it."""
    sac_steps: int = 1000
    """SAC agent steps (ViSaRL DMC: 100k)."""
    sac_init_steps: int = 300
    """Random-action steps before SAC updates."""
    sac_batch: int = 64
    """SAC batch size (ViSaRL: 128)."""
    sac_hidden_dim: int = 256
    """Width of the actor and critic hidden layers (ViSaRL: 1024)."""
    sac_hidden_layers: int = 2
    """Hidden layers of the actor and critic (ViSaRL: 3)."""
    eval_episodes: int = 3
    """Episodes of each evaluation (clean, distractor)."""
    distractor: str = "color_hard"
    """Distractor of the robustness evaluation (our own sets: color_easy, color_hard,
    video_easy, video_hard)."""
    seed: int = 0
    """Seeds collection, annotation selection, training and evaluation."""

    def scaled(self, factor: float) -> DemoConfig:
        """This config with every budget (``SCALED_FIELDS``) multiplied by ``factor``."""
        if not factor > 0:
            raise DemoError(f"--scale must be > 0, got {factor}")
        changes = {
            name: max(1 if name != "sac_init_steps" else 0, round(getattr(self, name) * factor))
            for name in SCALED_FIELDS
        }
        return dataclasses.replace(self, **changes)

    def env_options(self) -> dict[str, Any]:
        """make_env options of collection, SAC and evaluation: ours, then the env preset
        the SAC preset implies for this suite (visarl-dmc, visarl-metaworld) for the rest."""
        from saliency_rl.algos.sac import ENV_PRESETS
        from saliency_rl.envs import parse_spec

        options: dict[str, Any] = {"image_size": self.image_size, "frame_stack": self.frame_stack}
        if self.action_repeat is not None:
            options["action_repeat"] = self.action_repeat
        if self.episode_length is not None:
            options["episode_length"] = self.episode_length
        preset = ENV_PRESETS.get(self.sac_preset, {}).get(parse_spec(self.env_spec).suite)
        if preset:
            options["preset"] = preset
        return options


DEMO_PRESETS: dict[str, DemoConfig] = {
    # Measured on 2 CPU cores shared with other jobs at load 7-26 (Nov 2026): about 1080
    # CPU-seconds over all stages (predictor 170, MultiMAE 290, SAC 365, evaluation 180); wall
    # time there 52 minutes. Probes at load ~3-10 suggest 6-8 minutes on 2 idle cores.
    "cpu": DemoConfig(),
    # ViSaRL's settings (Table VI and the released code): full MultiMAE (depth 4, width 256),
    # 10k pretraining steps at batch 64, 1500-step U-Net, SAC with 1024x3 heads, batch 128,
    # 100k agent steps, 10 evaluation episodes. Hours on a GPU.
    "paper": DemoConfig(
        frame_stack=3,
        collect_episodes=50,
        predictor_steps=1500,
        predictor_batch=16,
        multimae_overrides={},
        pretrain_steps=10_000,
        pretrain_batch=64,
        sac_steps=100_000,
        sac_init_steps=1000,
        sac_batch=128,
        sac_hidden_dim=1024,
        sac_hidden_layers=3,
        eval_episodes=10,
    ),
    # Seconds: every stage runs for real on a handful of frames (tests, smoke runs).
    "tiny": DemoConfig(
        episode_length=6,  # SAC's 12 steps make 2 episodes: a learning curve of 2 points
        collect_episodes=3,
        predictor_size="tiny",
        predictor_steps=3,
        predictor_batch=4,
        multimae_size="tiny",
        multimae_overrides={},
        pretrain_steps=2,
        pretrain_batch=4,
        sac_steps=12,
        sac_init_steps=6,
        sac_batch=4,
        sac_hidden_dim=16,
        sac_hidden_layers=1,
        eval_episodes=1,
    ),
}


def demo_config(preset: str = "cpu", scale: float = 1.0, **overrides: Any) -> DemoConfig:
    """Preset ``preset`` with ``overrides`` (None values ignored), budgets times ``scale``."""
    if preset not in DEMO_PRESETS:
        raise DemoError(f"unknown demo preset {preset!r}; valid: {', '.join(DEMO_PRESETS)}")
    values = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(values) - {f.name for f in dataclasses.fields(DemoConfig)}
    if unknown:
        raise DemoError(f"unknown demo settings {sorted(unknown)}")
    config = dataclasses.replace(DEMO_PRESETS[preset], **values)
    return config.scaled(scale) if scale != 1.0 else config


# ---------------------------------------------------------------------- the demo
class Demo:
    """The eight stages over one output directory; ``run()`` does the ones not done yet."""

    def __init__(
        self,
        out: Path,
        config: DemoConfig,
        *,
        annotate: str = "oracle",
        port: int = 8765,
        device: str = "auto",
        progress: bool = True,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        if annotate not in ("oracle", "browser"):
            raise DemoError(f"--annotate must be oracle or browser, got {annotate!r}")
        self.out, self.config, self.annotate = out, config, annotate
        self.port, self.device, self.progress = port, device, progress
        self.echo = echo or (lambda text: print(text, flush=True))
        self.dataset_dir = out / "dataset"
        self.predictor_dir = out / "predictor"
        self.multimae_dir = out / "multimae"
        self.sac_dir = out / "sac"
        self.report_dir = out / "report"
        self.state = self._load_state()

    # -------------------------------------------------------------- state
    def _load_state(self) -> dict[str, Any]:
        from saliency_rl.runs import read_json

        path = self.out / STATE_FILE
        wanted = dataclasses.asdict(self.config)
        if path.is_file():
            state = read_json(path, "demo state")
            if state.get("config") != wanted:
                changed = sorted(k for k in wanted if state.get("config", {}).get(k) != wanted[k])
                raise DemoError(
                    f"{self.out} holds a demo with other settings ({', '.join(changed)}); "
                    "run the same command to continue it, or choose another --out"
                )
            return state
        self.out.mkdir(parents=True, exist_ok=True)
        state = {
            "config": wanted,
            "annotate": self.annotate,
            "created": _now(),
            "command": " ".join(sys.argv),
            "package_version": __version__,
            "stages": {},
        }
        atomic_write_json(path, state)
        return state

    def _save_state(self) -> None:
        atomic_write_json(self.out / STATE_FILE, self.state)

    # -------------------------------------------------------------- driver
    def run(self, until: str | None = None) -> Path:
        """Run every stage not done yet, up to stage ``until`` (a STAGE_KEYS name; None: all);
        return the report's index.html (written by the last stage)."""
        if until is not None and until not in STAGE_KEYS:
            raise DemoError(f"unknown stage {until!r}; valid: {', '.join(STAGE_KEYS)}")
        stages = [
            (self._collect_done, self._collect),
            (self._annotate_done, self._annotate),
            (self._predictor_done, self._train_predictor),
            (self._label_done, self._label),
            (self._pretrain_done, self._pretrain),
            (self._sac_done, self._train_sac),
            (self._evaluate_done, self._evaluate),
            (lambda: False, self._report),  # cheap: always rewritten with the latest times
        ]
        started = time.perf_counter()
        last = STAGE_KEYS.index(until) + 1 if until else len(STAGES)
        for number, (name, (done, work)) in enumerate(zip(STAGES, stages, strict=True), 1):
            if number > last:
                break
            header = f"[{number}/{len(STAGES)}] {name}"
            if done():
                seconds = self.state["stages"].get(name, {}).get("seconds")
                took = f" (took {seconds:.0f} s)" if seconds is not None else ""
                self.echo(f"{header}: done already, skipped{took}")
                continue
            self.echo(f"{header} ...")
            tick, cpu = time.perf_counter(), time.process_time()
            detail = work()
            seconds = time.perf_counter() - tick
            # CPU seconds of all this process's threads: what the stage costs on an idle
            # machine, whatever else was running (wall time depends on the load).
            self.state["stages"][name] = {
                "seconds": round(seconds, 1),
                "cpu_seconds": round(time.process_time() - cpu, 1),
                "load_average": round(_load(), 1),
                "finished": _now(),
            }
            self._save_state()
            self.echo(
                f"      {detail}  ({seconds:.0f} s)" if detail else f"      ({seconds:.0f} s)"
            )
        total = sum(s["seconds"] for s in self.state["stages"].values())
        self.state["total_seconds"] = round(total, 1)
        self._save_state()
        index = self.report_dir / "index.html"
        if last < len(STAGES):
            self.echo(f"demo stopped after stage {until} as asked: {self.out}")
            return index
        self.echo(
            f"demo finished: {time.perf_counter() - started:.0f} s this time, {total:.0f} s "
            f"over all stages\nreport: {index}\n        {self.report_dir / 'report.md'}"
        )
        return index

    # -------------------------------------------------------------- 1. collect
    def _dataset(self) -> Any:
        from saliency_rl.data.dataset import Dataset

        return Dataset.open(self.dataset_dir)

    def _collect_done(self) -> bool:
        return (self.dataset_dir / "meta.json").is_file() and (
            self._dataset().num_episodes >= self.config.collect_episodes
        )

    def _collect(self) -> str:
        from saliency_rl.data.collect import collect

        c = self.config
        have = self._dataset().num_episodes if (self.dataset_dir / "meta.json").is_file() else 0
        options = {k: v for k, v in c.env_options().items() if k != "frame_stack"}
        dataset = collect(
            c.env_spec, self.dataset_dir, episodes=c.collect_episodes - have, seed=c.seed,
            env_options=options, progress=self.progress,
        )  # fmt: skip
        return f"{dataset.num_frames} frames in {dataset.num_episodes} episodes: {self.dataset_dir}"

    # -------------------------------------------------------------- 2. annotate
    def _annotated(self) -> int:
        from saliency_rl.saliency.annotations import AnnotationStore

        store = AnnotationStore(self._dataset())
        selection = store.selection()[: self.config.annotate_frames]
        return sum(1 for f in selection if store.clicks(f))

    def _annotate_done(self) -> bool:
        return self._annotated() >= self.config.annotate_frames

    def _annotate(self) -> str:
        c = self.config
        if self.annotate == "oracle":
            from saliency_rl.saliency.annotations import annotate_with_oracle

            report = annotate_with_oracle(self._dataset(), c.annotate_frames, seed=c.seed)
            return f"the oracle clicked the task's bodies on {len(report.frames)} frames"
        from saliency_rl.saliency.web import start_server

        server = start_server(self.dataset_dir, c.annotate_frames, seed=c.seed, port=self.port)
        self.echo(
            f"      open {server.url} and click what matters on each of {c.annotate_frames} "
            "frames; the demo continues when all are annotated (Ctrl-C stops; clicks are kept)"
        )
        try:
            from tqdm.auto import tqdm

            with tqdm(total=c.annotate_frames, desc="annotated", disable=not self.progress) as bar:
                while True:
                    done = server.get_app().state()["done"]
                    bar.update(done - bar.n)
                    if done >= c.annotate_frames:
                        break
                    time.sleep(0.5)
        finally:
            server.stop()
        return f"{c.annotate_frames} frames annotated in the browser"

    # -------------------------------------------------------------- 3. predictor
    def _predictor_done(self) -> bool:
        return (self.predictor_dir / "report.json").is_file()

    def _train_predictor(self) -> str:
        from saliency_rl.saliency.fit import fit_predictor

        c = self.config
        report = fit_predictor(
            self.dataset_dir, self.predictor_dir, model=c.predictor_model, size=c.predictor_size,
            steps=c.predictor_steps, batch_size=c.predictor_batch, seed=c.seed,
            device=self.device, progress=self.progress,
        )  # fmt: skip
        held = report.get("holdout_metrics") or {}
        quality = (
            f"held-out max F-beta {held['max_f_beta']:.3f}, MAE {held['mae']:.4f}"
            if held.get("max_f_beta") is not None
            else "no held-out frame with salient pixels"
        )
        return f"{c.predictor_model} on {len(report['train_frames'])} frames; {quality}"

    # -------------------------------------------------------------- 4. label
    def _label_done(self) -> bool:
        return STAGES[3] in self.state["stages"] and self._dataset().has_field("saliency")

    def _label(self) -> str:
        from saliency_rl.saliency.label import label_dataset

        summary = label_dataset(
            self.dataset_dir, self.predictor_dir, device=self.device, overwrite=True,
            progress=self.progress,
        )  # fmt: skip
        return f"{summary['frames_labelled']} frames labelled"

    # -------------------------------------------------------------- 5. pretrain
    def _pretrain_done(self) -> bool:
        return STAGES[4] in self.state["stages"]

    def _pretrain(self) -> str:
        from saliency_rl.pretrain.multimae_pretrain import pretrain_multimae

        c = self.config
        summary = pretrain_multimae(
            self.dataset_dir, self.multimae_dir, modalities=("rgb", "saliency"),
            steps=c.pretrain_steps, batch_size=c.pretrain_batch, seed=c.seed,
            device=self.device, resume=True, progress=self.progress,
            model_size=c.multimae_size, model_overrides=c.multimae_overrides,
            checkpoint_every=max(1, c.pretrain_steps // 4),
        )  # fmt: skip
        losses = "  ".join(f"{k} {v:.4f}" for k, v in summary.losses.items())
        return f"{summary.step} steps; losses {losses}"

    # -------------------------------------------------------------- 6. SAC
    def _sac_done(self) -> bool:
        return (self.sac_dir / "eval.json").is_file()

    def _train_sac(self) -> str:
        from saliency_rl.algos.sac import sac_config
        from saliency_rl.algos.sac_trainer import resume_sac, train_sac

        c = self.config
        if (self.sac_dir / "config.json").is_file():
            self.echo("      resuming the SAC run from its latest checkpoint")
            run = resume_sac(self.sac_dir, device=self.device, progress=self.progress)
        else:
            if self.sac_dir.exists():  # killed before its config was written: nothing to keep
                shutil.rmtree(self.sac_dir)
            config = sac_config(
                c.sac_preset, encoder="multimae", saliency_mode="rgb+saliency",
                total_steps=c.sac_steps, init_steps=c.sac_init_steps, batch_size=c.sac_batch,
                hidden_dim=c.sac_hidden_dim, hidden_layers=c.sac_hidden_layers, seed=c.seed,
                eval_every=0, eval_episodes=c.eval_episodes,
                checkpoint_every=max(1, c.sac_steps // 4), log_every=max(1, c.sac_steps // 20),
            )  # fmt: skip
            run = train_sac(
                c.env_spec, config, env_options=c.env_options(),
                predictor=self.predictor_dir, encoder_checkpoint=self.multimae_dir,
                out=self.sac_dir, device=self.device, preset=c.sac_preset,
                progress=self.progress,
            )  # fmt: skip
        final = (_read(run / "eval.json") or {}).get("final") or {}
        return (
            f"{c.sac_steps} agent steps; final return {final.get('return_mean', float('nan')):.1f}"
        )

    # -------------------------------------------------------------- 7. evaluate
    def _evaluate_done(self) -> bool:
        from saliency_rl.evaluation import eval_file_name

        return all(
            (self.sac_dir / eval_file_name(d)).is_file() for d in (None, self.config.distractor)
        )

    def _evaluate(self) -> str:
        from saliency_rl.evaluation import evaluate_run

        c = self.config
        parts = []
        for distractor in (None, c.distractor):
            result = evaluate_run(
                self.sac_dir, episodes=c.eval_episodes, distractor=distractor, video=1,
                device=self.device, progress=self.progress,
            )  # fmt: skip
            parts.append(f"{distractor or 'clean'} {result['return_mean']:.1f}")
        return "return " + ", ".join(parts)

    # -------------------------------------------------------------- 8. report
    def _report(self) -> str:
        from saliency_rl.experiments.report import write_report

        self._figures()
        index = write_report(
            [self.sac_dir], self.report_dir,
            title=f"saliency-rl demo: ViSaRL on {self.config.env_spec}",
            notes={"Demo": self._notes()},
        )  # fmt: skip
        return str(index)

    def _notes(self) -> str:
        c = self.config
        options = ", ".join(f"{k} {v}" for k, v in c.env_options().items())
        lines = [
            f"task {c.env_spec} ({options}); annotation by "
            f"{self.state.get('annotate', self.annotate)}",
            f"command: {self.state.get('command', '')}",
            "",
            "stage                                     wall s    CPU s  load",
        ]
        for name in STAGES:
            stage = self.state["stages"].get(name, {})
            if "seconds" in stage:
                lines.append(
                    f"{name:40s} {stage['seconds']:8.1f} {stage.get('cpu_seconds', 0):8.1f} "
                    f"{stage.get('load_average', 0):5.1f}"
                )
            else:
                lines.append(f"{name:40s}  (this report)")
        report = _read(self.predictor_dir / "report.json") or {}
        held = report.get("holdout_metrics") or {}
        if held.get("max_f_beta") is not None:
            lines += [
                "",
                f"saliency predictor ({report.get('model')}): held-out max F-beta "
                f"{held['max_f_beta']:.3f}, MAE {held['mae']:.4f} on "
                f"{len(report.get('holdout_frames', []))} frames",
            ]
        return "\n".join(lines)

    def _figures(self) -> None:
        """Images the report shows, written into the SAC run's figures/."""
        from saliency_rl.saliency.annotations import AnnotationStore
        from saliency_rl.saliency.overlay import overlay, save_grid

        figures = self.sac_dir / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        dataset = self._dataset()
        store = AnnotationStore(dataset)
        frames = [f for f in store.selection() if store.clicks(f)][: self.config.annotate_frames]
        tiles = [overlay(dataset.frame(f, ["rgb"])["rgb"], store.saliency_map(f)) for f in frames]
        if tiles:
            save_grid(figures / "saliency_annotations.png", tiles)
        copies = {"saliency_predictor_preview.png": self.predictor_dir / "preview.png"}
        reconstructions = sorted((self.multimae_dir / "reconstructions").glob("*.png"))
        if reconstructions:
            copies["multimae_reconstructions.png"] = reconstructions[-1]
        for name, source in copies.items():
            if source.is_file():
                data = source.read_bytes()
                atomic_write_bytes(figures / name, lambda h, data=data: h.write(data))
        for distractor in (None, self.config.distractor):
            path = figures / f"policy_saliency_{distractor or 'clean'}.png"
            if not path.is_file():
                self._policy_frames(path, distractor)

    def _policy_frames(self, path: Path, distractor: str | None) -> None:
        """Frames of one evaluation episode with the saliency map the policy used."""
        from saliency_rl.envs import make_env
        from saliency_rl.envs.wrappers import frame_channels
        from saliency_rl.evaluation import EVAL_SEED, load_run_policy
        from saliency_rl.saliency.overlay import overlay, save_grid

        config, policy = load_run_policy(self.sac_dir, self.device)
        options = dict(config.get("env_options") or {})
        env = make_env(config["env"], **options, distractor=distractor, seed=EVAL_SEED)
        channels = frame_channels(env)
        tiles = []
        try:
            policy.reset()
            obs, _ = env.reset(seed=EVAL_SEED)
            for step in range(5 * SAMPLE_EVERY):
                if step % SAMPLE_EVERY == 0:
                    frame = np.asarray(obs["rgb"])[-channels:]  # the newest frame (C, H, W)
                    rgb = frame if channels == 3 else np.repeat(frame[:1], 3, axis=0)
                    saliency = policy.saliency(obs)
                    tiles.append(rgb.transpose(1, 2, 0))
                    tiles.append(overlay(rgb, np.clip(saliency, 0, 1)) if saliency is not None
                                 else rgb.transpose(1, 2, 0))  # fmt: skip
                obs, _, terminated, truncated, _ = env.step(policy.act(obs))
                if terminated or truncated:
                    break
        finally:
            env.close()
        if tiles:
            save_grid(path, tiles, columns=2)


def run_demo(
    out: str | Path | None = None,
    *,
    preset: str = "cpu",
    scale: float = 1.0,
    annotate: str = "oracle",
    port: int = 8765,
    device: str = "auto",
    progress: bool = True,
    until: str | None = None,
    **overrides: Any,
) -> Path:
    """Run (or continue) the demo in ``out`` (default ``runs/demo``, so running it again
    continues it); return the report's index.html. ``overrides`` are DemoConfig fields
    (env_spec, seed, ...)."""
    if out is None:
        out = Path("runs") / "demo"
    config = demo_config(preset, scale, **overrides)
    demo = Demo(Path(out), config, annotate=annotate, port=port, device=device, progress=progress)
    return demo.run(until)


def _read(path: Path) -> Any:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _load() -> float:
    """The machine's 1-minute load average (0 where the OS has none)."""
    import os

    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
