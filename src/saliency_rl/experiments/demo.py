"""``saliency-rl demo``: ViSaRL's pipeline end to end, two arms side by side: without saliency
and with it, on the same data, budget and seed, evaluated clean and under a distractor.

Eight stages, each a library function, each writing under ``OUT``::

    [1/8] collect demonstrations (BC) or frames    OUT/dataset/
    [2/8] annotate 10 frames (oracle or browser)   OUT/dataset/annotations/
    [3/8] train the saliency predictor (U-Net)     OUT/predictor/
    [4/8] label every frame with saliency          OUT/dataset/ (field "saliency")
    [5/8] pretrain the frozen encoder(s)           OUT/multimae_rgb/, OUT/multimae/
    [6/8] train both arms                          OUT/<arm>/  (run directories)
    [7/8] evaluate both clean and distracted       OUT/<arm>/eval_clean.json, eval_<mode>.json
    [8/8] write the verdict and the report         OUT/verdict.json, OUT/report/index.html

The report opens with the verdict (``saliency_rl.experiments.verdict``): each arm's score
clean and distracted, the share kept, the difference with its interval, one sentence.

The arms are encoder modes of the frozen MultiMAE (``DemoConfig.arms``). The CPU default
is behaviour cloning on Meta-World from scripted-expert demonstrations: ``rgb`` (an RGB MAE's
features) against ``rgb_x_saliency`` (the same MAE fed frames multiplied by the predicted
saliency map), the pair that learns within minutes on a CPU and where saliency can matter
under distractors (benchmarks/results/bc_distractors.md); pixel SAC does not learn within
the CPU budget (benchmarks/results/dmc100k.md). ``paper`` is ViSaRL's own setting: SAC on
DMC, ``rgb`` vs ``rgb+saliency``, hours on a GPU.

Resumable: a stage whose output is complete is skipped, so running the same command again
after an interruption continues where it stopped. ``OUT/demo.json`` holds the settings and
each stage's wall and CPU time.

Budgets are named presets (``DEMO_PRESETS``): ``cpu`` (the default; under 15 minutes on two
CPU cores), ``paper`` (ViSaRL's settings, for a GPU) and ``tiny`` (tests). ``scale``
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

from saliency_rl import __version__
from saliency_rl.data.atomic import atomic_write_bytes, atomic_write_json
from saliency_rl.errors import SaliencyRLError

STAGES = (
    "collect demonstrations or frames",
    "annotate frames",
    "train saliency predictor",
    "label the dataset with saliency",
    "pretrain the frozen encoders",
    "train both arms",
    "evaluate both arms clean and under a distractor",
    "write the verdict and the report",
)
STAGE_KEYS = (
    "collect",
    "annotate",
    "predictor",
    "label",
    "pretrain",
    "train",
    "evaluate",
    "report",
)
"""Short names of the stages, for ``until``."""
STATE_FILE = "demo.json"
VERDICT_FILE = "verdict.json"
PROBE_FILE = "probe.json"
"""The report's encoder probe (``DemoRun._probe_line``), computed once."""
LEARNERS = ("bc", "sac")
CLIP_HEIGHT = 128  # pixels of the report's GIF clips (the frame and its saliency beside it)
CLIP_EVERY = 2  # every 2nd frame of the evaluation video goes into the clip
# Budgets that `scale` multiplies.
SCALED_FIELDS = (
    "collect_episodes",
    "predictor_steps",
    "pretrain_steps",
    "bc_steps",
    "sac_steps",
    "sac_init_steps",
    "eval_episodes",
)
# Seconds per unit of budget on 2 CPU cores (measured 2026-12-03, AMD EPYC, 2 cores: the
# default demo's stages, benchmarks/results/demo_time.md; SAC's is not measured yet),
# for the time-left estimate; after each stage the estimate is rescaled by how the stages
# so far compared with it, so a slower or faster machine corrects itself as it goes.
SECONDS_PER = {
    "collect_step": 0.033,  # per environment step collected (Meta-World, expert)
    "predictor_step": 0.166,  # per U-Net step at batch 16
    "pretrain_step": 0.145,  # per MultiMAE step at batch 32, the CPU demo's small model
    "bc_step": 0.045,  # per BC gradient step, features cached (caching included)
    "bc_eval_step": 0.035,  # per policy step in an evaluation (encoder and predictor)
    "sac_step": 0.6,  # per SAC agent step with updates (frozen MultiMAE features; a guess)
    "sac_eval_step": 0.03,
}


class DemoError(SaliencyRLError):
    """The demo cannot start or continue: the message says why."""


@dataclass
class DemoConfig:
    """Every setting of the demo; stored in ``OUT/demo.json``."""

    env_spec: str = "metaworld:drawer-open"
    """Task: a DMC or Meta-World spec with an oracle (salient points)."""
    learner: str = "bc"
    """``bc`` (behaviour cloning from scripted-expert demos; Meta-World) or ``sac``."""
    arms: tuple[str, str] = ("rgb", "rgb_x_saliency")
    """Frozen-encoder modes of the two arms: without saliency, then with it (modes of
    ``models.frozen_encoder.ENCODER_MODES``)."""
    image_size: int = 64
    """Frame side in pixels (ViSaRL: 64)."""
    action_repeat: int | None = 2
    """Simulator steps per agent step; None: the env preset's (SAC: ViSaRL's per domain)."""
    frame_stack: int = 1
    """Frames per observation (SAC stacks; BC's LSTM sees a history of states instead)."""
    episode_length: int | None = 75
    """Agent steps per episode; None: the suite's. 75 at action repeat 2 is 150 simulator
    steps: the scripted expert opens the drawer within 45."""
    collect_episodes: int = 10
    """Episodes collected: expert demonstrations (bc) or random-policy episodes (sac)."""
    annotate_frames: int = 10
    """Frames annotated (ViSaRL: 10 to 30 per task)."""
    predictor_model: str = "unet"
    """Saliency predictor: unet (fast) or picanet."""
    predictor_size: str = "small"
    """Named size of the predictor network (small, or tiny for tests)."""
    predictor_steps: int = 600
    """Optimiser steps of the predictor (saliency.fit default: 1500 for the U-Net)."""
    predictor_batch: int = 16
    """Augmented frames per predictor step (background replacement on, as by default)."""
    multimae_size: str = "visarl"
    """MultiMAE named size (visarl, tiny); ``multimae_overrides`` change single fields."""
    multimae_overrides: dict[str, Any] = field(
        default_factory=lambda: dict(
            dim=128, depth=2, num_heads=4, decoder_dim=128, decoder_depth=1, decoder_heads=4
        )
    )
    """MultiMAE config fields to change; the CPU demo halves ViSaRL's width and depth so
    pretraining fits its budget (about 6x faster a step)."""
    pretrain_steps: int = 150
    """MultiMAE pretraining steps per encoder (ViSaRL-style full run: 10,000)."""
    pretrain_batch: int = 32
    """Frames per pretraining step."""
    bc_steps: int = 1000
    """BC gradient steps per arm (preset visarl-bc otherwise)."""
    sac_preset: str = "visarl"
    """SAC hyperparameter preset (ViSaRL Table VI); the fields below override it."""
    sac_steps: int = 1000
    """SAC agent steps per arm (ViSaRL DMC: 100k)."""
    sac_init_steps: int = 300
    """Random-action steps before SAC updates."""
    sac_batch: int = 64
    """SAC batch size (ViSaRL: 128)."""
    sac_hidden_dim: int = 256
    """Width of the actor and critic hidden layers (ViSaRL: 1024)."""
    sac_hidden_layers: int = 2
    """Hidden layers of the actor and critic (ViSaRL: 3)."""
    curve_points: int = 4
    """Evaluations during training (the learning curves), of ``curve_episodes`` each."""
    curve_episodes: int = 5
    """Episodes of each evaluation during training."""
    eval_episodes: int = 20
    """Episodes of each final evaluation (clean, distractor), the same seeds for both arms."""
    distractor: str = "video_easy"
    """Distractor of the robustness evaluation: our own sets (color_easy, color_hard,
    video_easy, video_hard) or ``MODE:PATH`` with DMC-GB's clips. video_easy replaces the
    sky, floor and walls with moving backgrounds; video_hard also the table under the
    drawer, where the arm's saliency halo lets more of it through
    (benchmarks/results/bc_distractors.md)."""
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

    def validate(self) -> DemoConfig:
        """DemoError naming the first bad setting; returns self."""
        from saliency_rl.models.frozen_encoder import ENCODER_MODES

        if self.learner not in LEARNERS:
            raise DemoError(f"unknown learner {self.learner!r}; valid: {', '.join(LEARNERS)}")
        if len(self.arms) != 2 or len(set(self.arms)) != 2:
            raise DemoError(f"arms must be two different encoder modes, got {list(self.arms)}")
        for mode in self.arms:
            if mode not in ENCODER_MODES:
                raise DemoError(
                    f"unknown arm {mode!r}; valid encoder modes: {', '.join(ENCODER_MODES)}"
                )
        if self.learner == "bc" and not self.env_spec.startswith("metaworld:"):
            raise DemoError(
                f"the bc learner clones Meta-World's scripted experts; {self.env_spec} has "
                "none: use a metaworld:<task>, or learner sac"
            )
        return self

    def env_options(self) -> dict[str, Any]:
        """make_env options of collection, training and evaluation: ours, then (SAC) the
        env preset the SAC preset implies for this suite for the rest."""
        from saliency_rl.algos.sac import ENV_PRESETS
        from saliency_rl.envs import parse_spec

        options: dict[str, Any] = {"image_size": self.image_size, "frame_stack": self.frame_stack}
        if self.action_repeat is not None:
            options["action_repeat"] = self.action_repeat
        if self.episode_length is not None:
            options["episode_length"] = self.episode_length
        if self.learner == "sac":
            preset = ENV_PRESETS.get(self.sac_preset, {}).get(parse_spec(self.env_spec).suite)
            if preset:
                options["preset"] = preset
        return options

    def encoders(self) -> dict[str, tuple[str, ...]]:
        """Pretraining runs the arms need: directory name -> modalities."""
        return {self.encoder_of(mode): _modalities(mode) for mode in self.arms}

    def encoder_of(self, mode: str) -> str:
        """The pretraining run of an arm: ``multimae`` (RGB and saliency) or ``multimae_rgb``
        (RGB only; the paper grids' names for both)."""
        return "multimae" if len(_modalities(mode)) == 2 else "multimae_rgb"

    def estimate_seconds(self) -> dict[str, float]:
        """Estimated wall seconds of each stage on 2 CPU cores (``SECONDS_PER``)."""
        steps = self.collect_episodes * (self.episode_length or 1000)
        eval_steps = 2 * self.eval_episodes * (self.episode_length or 1000)
        curve = self.curve_points * self.curve_episodes * (self.episode_length or 1000)
        if self.learner == "bc":
            train = 2 * (
                self.bc_steps * SECONDS_PER["bc_step"] + curve * SECONDS_PER["bc_eval_step"]
            )
            evaluate = 2 * eval_steps * SECONDS_PER["bc_eval_step"]
        else:
            train = 2 * (
                self.sac_steps * SECONDS_PER["sac_step"] + curve * SECONDS_PER["sac_eval_step"]
            )
            evaluate = 2 * eval_steps * SECONDS_PER["sac_eval_step"]
        return {
            STAGES[0]: steps * SECONDS_PER["collect_step"],
            STAGES[1]: 1.0,
            STAGES[2]: self.predictor_steps * SECONDS_PER["predictor_step"] * self.predictor_batch / 16,
            STAGES[3]: steps * 0.002,
            STAGES[4]: len(self.encoders()) * self.pretrain_steps * SECONDS_PER["pretrain_step"]
            * self.pretrain_batch / 32 * (1 if self.multimae_overrides else 6),
            STAGES[5]: train,
            STAGES[6]: evaluate,
            STAGES[7]: 10.0 + steps * 0.02,  # the report, and the encoder probe on the dataset
        }  # fmt: skip


DEMO_PRESETS: dict[str, DemoConfig] = {
    # Measured: benchmarks/results/demo_time.md (stage times, verdict).
    "cpu": DemoConfig(),
    # ViSaRL's own setting (Table VI and the released code): SAC on DMC from frozen
    # MultiMAE features, rgb against rgb+saliency; full MultiMAE (depth 4, width 256), 10k
    # pretraining steps at batch 64, 1500-step U-Net, SAC with 1024x3 heads, batch 128,
    # 100k agent steps per arm, 10 evaluation episodes. Hours on a GPU.
    "paper": DemoConfig(
        env_spec="dmc:cartpole-swingup",
        learner="sac",
        arms=("rgb", "rgb+saliency"),
        action_repeat=None,
        frame_stack=3,
        episode_length=None,
        collect_episodes=50,
        predictor_steps=1500,
        multimae_overrides={},
        pretrain_steps=10_000,
        pretrain_batch=64,
        sac_steps=100_000,
        sac_init_steps=1000,
        sac_batch=128,
        sac_hidden_dim=1024,
        sac_hidden_layers=3,
        curve_points=10,
        curve_episodes=10,
        eval_episodes=10,
    ),
    # Seconds: every stage runs for real on a handful of frames (tests, smoke runs).
    "tiny": DemoConfig(
        env_spec="metaworld:reach",
        episode_length=8,
        collect_episodes=3,
        annotate_frames=4,
        predictor_size="tiny",
        predictor_steps=3,
        predictor_batch=4,
        multimae_size="tiny",
        multimae_overrides={},
        pretrain_steps=2,
        pretrain_batch=4,
        bc_steps=4,
        sac_steps=12,
        sac_init_steps=6,
        sac_batch=4,
        sac_hidden_dim=16,
        sac_hidden_layers=1,
        curve_points=2,
        curve_episodes=1,
        eval_episodes=2,
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
    if "arms" in values:
        values["arms"] = tuple(values["arms"])
    config = dataclasses.replace(DEMO_PRESETS[preset], **values)
    return (config.scaled(scale) if scale != 1.0 else config).validate()


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
        self.out, self.config, self.annotate = out, config.validate(), annotate
        self.port, self.device, self.progress = port, device, progress
        self.echo = echo or (lambda text: print(text, flush=True))
        self.dataset_dir = out / "dataset"
        self.predictor_dir = out / "predictor"
        self.report_dir = out / "report"
        self.arm_dirs = {mode: out / _slug(mode) for mode in config.arms}
        self.state = self._load_state()

    # -------------------------------------------------------------- state
    def _wanted(self) -> dict[str, Any]:
        import json

        return json.loads(json.dumps(dataclasses.asdict(self.config)))  # tuples as lists

    def _load_state(self) -> dict[str, Any]:
        from saliency_rl.runs import read_json

        path = self.out / STATE_FILE
        wanted = self._wanted()
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
            (self._train_done, self._train_arms),
            (self._evaluate_done, self._evaluate),
            (lambda: False, self._report),  # cheap: always rewritten with the latest times
        ]
        estimate = self.config.estimate_seconds()
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
            left = self._time_left(estimate, STAGES[number - 1 : last])
            self.echo(f"{header} ...  (about {_duration(left)} left for the whole demo)")
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

    def _time_left(self, estimate: dict[str, float], stages: tuple[str, ...]) -> float:
        """Estimated seconds of ``stages``, rescaled by how the finished stages compared
        with their own estimates on this machine."""
        done = [n for n in self.state["stages"] if n in estimate and estimate[n] > 5]
        spent = sum(self.state["stages"][n]["seconds"] for n in done)
        expected = sum(estimate[n] for n in done)
        ratio = spent / expected if expected > 0 else 1.0
        return ratio * sum(estimate[n] for n in stages)

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
        policy = "expert" if c.learner == "bc" else "random"
        dataset = collect(
            c.env_spec, self.dataset_dir, episodes=c.collect_episodes - have, seed=c.seed,
            policy=policy, env_options=options, progress=self.progress,
        )  # fmt: skip
        return (
            f"{dataset.num_frames} frames in {dataset.num_episodes} {policy}-policy episodes: "
            f"{self.dataset_dir}"
        )

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
        return (
            f"{c.predictor_model} on {len(report['train_frames'])} frames; {quality}; "
            f"background replacement {report['background_replacement']}"
        )

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
        parts = []
        for name, modalities in c.encoders().items():
            summary = pretrain_multimae(
                self.dataset_dir, self.out / name, modalities=modalities,
                steps=c.pretrain_steps, batch_size=c.pretrain_batch, seed=c.seed,
                device=self.device, resume=True, progress=self.progress,
                model_size=c.multimae_size, model_overrides=c.multimae_overrides,
                checkpoint_every=max(1, c.pretrain_steps // 4),
            )  # fmt: skip
            losses = " ".join(f"{k} {v:.4f}" for k, v in summary.losses.items())
            parts.append(f"{'+'.join(modalities)}: {summary.step} steps, {losses}")
        return "; ".join(parts)

    # -------------------------------------------------------------- 6. train the arms
    def _train_done(self) -> bool:
        return all((d / "eval.json").is_file() for d in self.arm_dirs.values())

    def _train_arms(self) -> str:
        parts = []
        for mode, run in self.arm_dirs.items():
            if (run / "eval.json").is_file():
                continue
            self.echo(f"      arm {mode} -> {run}")
            train = self._train_bc if self.config.learner == "bc" else self._train_sac
            final = (_read(train(mode, run) / "eval.json") or {}).get("final") or {}
            score = final.get("success_rate")
            parts.append(
                f"{mode}: " + (f"success {score:.2f}" if score is not None else
                               f"return {final.get('return_mean', float('nan')):.1f}")
            )  # fmt: skip
        return "final training evaluation " + ", ".join(parts) if parts else ""

    def _train_bc(self, mode: str, run: Path) -> Path:
        from saliency_rl.algos.bc import preset_config
        from saliency_rl.algos.bc_trainer import resume_bc, train_bc

        c = self.config
        if (run / "config.json").is_file():
            self.echo("      resuming from its latest checkpoint")
            return resume_bc(run, device=self.device, progress=self.progress)
        if run.exists():  # killed before its config was written: nothing to keep
            shutil.rmtree(run)
        config = preset_config(
            "visarl-bc" if c.bc_steps > 100 else "tiny", seed=c.seed, steps=c.bc_steps,
            eval_every=max(1, c.bc_steps // c.curve_points), eval_episodes=c.curve_episodes,
            checkpoint_every=max(1, c.bc_steps // 4), log_every=max(1, c.bc_steps // 20),
        )  # fmt: skip
        return train_bc(
            self.dataset_dir, self.out / c.encoder_of(mode), config, mode=mode,
            predictor=self.predictor_dir if mode != "rgb" else None, out=run,
            device=self.device, progress=self.progress,
        )  # fmt: skip

    def _train_sac(self, mode: str, run: Path) -> Path:
        from saliency_rl.algos.sac import sac_config
        from saliency_rl.algos.sac_trainer import resume_sac, train_sac

        c = self.config
        if (run / "config.json").is_file():
            self.echo("      resuming from its latest checkpoint")
            return resume_sac(run, device=self.device, progress=self.progress)
        if run.exists():
            shutil.rmtree(run)
        config = sac_config(
            c.sac_preset, encoder="multimae", saliency_mode=mode,
            total_steps=c.sac_steps, init_steps=c.sac_init_steps, batch_size=c.sac_batch,
            hidden_dim=c.sac_hidden_dim, hidden_layers=c.sac_hidden_layers, seed=c.seed,
            eval_every=max(1, c.sac_steps // c.curve_points), eval_episodes=c.curve_episodes,
            checkpoint_every=max(1, c.sac_steps // 4), log_every=max(1, c.sac_steps // 20),
        )  # fmt: skip
        return train_sac(
            c.env_spec, config, env_options=c.env_options(),
            predictor=self.predictor_dir if mode != "rgb" else None,
            encoder_checkpoint=self.out / c.encoder_of(mode), out=run, device=self.device,
            preset=c.sac_preset, progress=self.progress,
        )  # fmt: skip

    # -------------------------------------------------------------- 7. evaluate
    def _evaluations(self) -> list[tuple[str, str | None, Path]]:
        from saliency_rl.evaluation import eval_file_name

        return [
            (mode, d, run / eval_file_name(d))
            for mode, run in self.arm_dirs.items()
            for d in (None, self.config.distractor)
        ]

    def _evaluate_done(self) -> bool:
        return all(path.is_file() for _, _, path in self._evaluations())

    def _evaluate(self) -> str:
        from saliency_rl.evaluation import evaluate_run

        c = self.config
        parts = []
        for mode, distractor, path in self._evaluations():
            if path.is_file():
                continue
            result = evaluate_run(
                self.arm_dirs[mode], episodes=c.eval_episodes, distractor=distractor, video=1,
                device=self.device, progress=self.progress,
            )  # fmt: skip
            score = result.get("success_rate", result["return_mean"])
            parts.append(f"{mode} {result['distractor']} {score:.2f}")
        return ", ".join(parts)

    # -------------------------------------------------------------- 8. verdict, report
    def verdict(self) -> Any:
        """The verdict of the two arms' evaluations (``experiments.verdict``)."""
        from saliency_rl.evaluation import eval_file_name
        from saliency_rl.experiments.verdict import compute_verdict, read_arm

        name = eval_file_name(self.config.distractor)
        arms = {mode: read_arm(run, name) for mode, run in self.arm_dirs.items()}
        label = name.removeprefix("eval_").removesuffix(".json")
        return compute_verdict(arms, label)

    def _report(self) -> str:
        from saliency_rl.experiments.report import write_report

        verdict = self.verdict()
        atomic_write_json(self.out / VERDICT_FILE, verdict.to_json())
        self._figures()
        c = self.config
        index = write_report(
            list(self.arm_dirs.values()), self.report_dir,
            title=f"saliency-rl demo: {c.learner.upper()} on {c.env_spec}, "
            f"{c.arms[0]} against {c.arms[1]}",
            notes={"Verdict": verdict.text(), "Encoder probe": self._probe_line(),
                   "Demo": self._notes()},
        )  # fmt: skip
        return f"{verdict.sentence}\n      {index}"

    def _probe_line(self) -> str:
        """One line: how much of the state the arms' frozen encoder carries (held-out R² of
        MLP probes, experiments.probe), beside 16x16 raw pixels; written once to
        OUT/probe.json."""
        from saliency_rl.errors import SaliencyRLError
        from saliency_rl.experiments.probe import load_encoder, probe

        file = self.out / PROBE_FILE
        result = _read(file)
        if result is None:
            name = self.config.encoder_of(self.config.arms[0])
            result = {"encoder": name}
            try:
                for key, spec in (("encoder_r2", f"multimae:{self.out / name}"),
                                  ("pixels_r2", "pixels:16")):  # fmt: skip
                    report = probe(self._dataset(), load_encoder(spec, self.device),
                                   progress=False)  # fmt: skip
                    result[key] = report["views"]["stack"]["mlp_mean"]
                    result["quantities"] = len(report["quantities"])
            except SaliencyRLError as error:  # e.g. too few episodes to hold some out
                result = {"encoder": name, "skipped": str(error)}
            atomic_write_json(file, result)
        if "skipped" in result:
            return f"probe skipped: {result['skipped']}"
        if result.get("encoder_r2") is None or result.get("pixels_r2") is None:
            return "probe: every quantity is constant on the held-out episodes"
        gap = result["encoder_r2"] - result["pixels_r2"]
        reading = (  # the frozen-encoder issue's bar: 0.15 above raw pixels
            "it holds what pixels do not" if gap >= 0.15 else "no more than raw pixels hold"
        )
        return (
            f"the frozen encoder ({result['encoder']}) carries held-out R² "
            f"{result['encoder_r2']:.2f} of the state ({result['quantities']} quantities, mean; "
            f"MLP probe on 3-frame stacks, held-out episodes), 16x16 raw pixels "
            f"{result['pixels_r2']:.2f}: {gap:+.2f}, {reading} (saliency-rl probe for more)"
        )

    def _notes(self) -> str:
        c = self.config
        options = ", ".join(f"{k} {v}" for k, v in c.env_options().items())
        learner = (
            f"behaviour cloning ({c.bc_steps} steps) from {c.collect_episodes} scripted-expert "
            "demonstrations"
            if c.learner == "bc"
            else f"SAC ({c.sac_steps} agent steps), {c.collect_episodes} random-policy episodes "
            "for the predictor and the encoders"
        )
        lines = [
            f"task {c.env_spec} ({options}); annotation by "
            f"{self.state.get('annotate', self.annotate)}",
            f"arms: without saliency {c.arms[0]}, with saliency {c.arms[1]} (frozen MultiMAE "
            f"modes, the same data, budget and seed {c.seed}); learner: {learner}",
            f"evaluation: {c.eval_episodes} episodes per arm and condition, the same seeds "
            f"for both arms; distractor {c.distractor}",
            f"command: {self.state.get('command', '')}",
            "",
            "stage                                              wall s    CPU s  load",
        ]
        for name in STAGES:
            stage = self.state["stages"].get(name, {})
            if "seconds" in stage:
                lines.append(
                    f"{name:50s} {stage['seconds']:8.1f} {stage.get('cpu_seconds', 0):8.1f} "
                    f"{stage.get('load_average', 0):5.1f}"
                )
            else:
                lines.append(f"{name:50s}  (this report)")
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
        """Images the report shows: annotations, predictor preview and reconstructions in
        the saliency arm's figures/, and per arm a GIF clip of each evaluation."""
        from saliency_rl.saliency.annotations import AnnotationStore
        from saliency_rl.saliency.overlay import overlay, save_grid

        with_arm = self.arm_dirs[self.config.arms[1]]
        figures = with_arm / "figures"
        figures.mkdir(parents=True, exist_ok=True)
        dataset = self._dataset()
        store = AnnotationStore(dataset)
        frames = [f for f in store.selection() if store.clicks(f)][: self.config.annotate_frames]
        tiles = [overlay(dataset.frame(f, ["rgb"])["rgb"], store.saliency_map(f)) for f in frames]
        if tiles:
            save_grid(figures / "saliency_annotations.png", tiles)
        copies = {"saliency_predictor_preview.png": self.predictor_dir / "preview.png"}
        encoder = self.out / self.config.encoder_of(self.config.arms[1])
        reconstructions = sorted((encoder / "reconstructions").glob("*.png"))
        if reconstructions:
            copies["multimae_reconstructions.png"] = reconstructions[-1]
        for name, source in copies.items():
            if source.is_file():
                data = source.read_bytes()
                atomic_write_bytes(figures / name, lambda h, data=data: h.write(data))
        for mode, _, path in self._evaluations():
            result = _read(path) or {}
            videos = result.get("videos") or []
            run = self.arm_dirs[mode]
            gif = run / "figures" / f"policy_rollout_{result.get('distractor', 'clean')}.gif"
            if videos and not gif.is_file():
                clip_gif(run / videos[0], gif)


def clip_gif(video: Path, out: Path) -> None:
    """A short, small GIF of an evaluation MP4 (every CLIP_EVERY-th frame, CLIP_HEIGHT high),
    so the report page plays it in any browser without a video codec."""
    import imageio.v2 as imageio
    from PIL import Image

    frames = []
    for i, frame in enumerate(imageio.get_reader(video)):
        if i % CLIP_EVERY:
            continue
        image = Image.fromarray(frame)
        width = max(1, round(image.width * CLIP_HEIGHT / image.height))
        frames.append(image.resize((width, CLIP_HEIGHT), Image.BILINEAR))
    if not frames:
        return
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(handle) -> None:
        frames[0].save(
            handle, format="GIF", save_all=True, append_images=frames[1:], duration=80, loop=0
        )

    atomic_write_bytes(out, write)


def _modalities(mode: str) -> tuple[str, ...]:
    """What an encoder mode's MultiMAE is pretrained on."""
    return ("rgb", "saliency") if mode.startswith("rgb+saliency") else ("rgb",)


def _duration(seconds: float) -> str:
    """``40 s``, ``12 min``, ``3.5 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _slug(mode: str) -> str:
    """A directory name of an encoder mode: rgb+saliency -> rgb_plus_saliency."""
    return mode.replace("+", "_plus_")


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
    yes: bool = False,
    **overrides: Any,
) -> Path:
    """Run (or continue) the demo in ``out`` (default ``runs/demo``, so running it again
    continues it); return the report's index.html. ``overrides`` are DemoConfig fields
    (env_spec, seed, ...). A demo estimated at an hour or more (the paper preset) starts
    only with ``yes``; DemoError otherwise, before anything is written."""
    if out is None:
        out = Path("runs") / "demo"
    config = demo_config(preset, scale, **overrides)
    hours = sum(config.estimate_seconds().values()) / 3600
    if hours >= 1 and not yes:
        raise DemoError(
            f"this demo is estimated at {hours:.1f} hours on 2 CPU cores (a GPU is much "
            "faster); add --yes to start it"
        )
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
