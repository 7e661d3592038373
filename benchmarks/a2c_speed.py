"""A2C training speed on Atari: ours against Stable-Baselines3's A2C, same network, same machine.

Setting (both): MsPacman, 16 environments, 5 steps per update, frame skip 4 (max over the
last two frames), 84x84 grey, 4 stacked frames, episodic life, clipped rewards; RMSprop
(lr 7e-4, alpha 0.99, eps 1e-5), entropy 0.01, value 0.5, gradient clip 0.5; the network of
Wu et al. (2021): conv 32 8x8/4, 64 4x4/2, 32 3x3/1, linear 512, then policy and value
heads. SB3 gets that network as a custom features extractor (its NatureCNN has 64 filters in
the third convolution), shared by the policy and the value head, as ours.

- ``ours``: saliency_rl's trainer (native ale-py vector env, batched uint8 observations,
  channels-last convolutions, the update reusing the acting passes' graph);
- ``ours + joint attention``: the same with the attention module trained online;
- ``sb3``: ``A2C("CnnPolicy")`` on ``make_atari_env`` (AtariWrapper, DummyVecEnv) +
  ``VecFrameStack(4)``.

Frames are counted alike for both: agent steps summed over the 16 environments, times the
frame skip of 4 (SB3's ``num_timesteps`` counts the same agent steps). Each measurement runs
``--warmup`` agent steps untimed, then times ``--steps`` agent steps; the rounds alternate
ours and SB3 so that load from other processes hits both; the table gives the median.

Usage:
    python benchmarks/a2c_speed.py [--steps 4000] [--rounds 3] [--threads 1]
        [--profile] [--out benchmarks/results]
Writes a2c_speed.json and a2c_speed.md (machine, versions, date, command) under --out;
``--profile`` adds where the time goes (cProfile of each loop).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import io
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import torch
from machine_info import cpu_model
from torch import nn

from saliency_rl.data.atomic import atomic_write_json, atomic_write_text

GAME = "MsPacman"
NUM_ENVS = 16
FRAME_SKIP = 4
TARGET = 1.5  # issue 6: ours at least 1.5x SB3's frames per second


# ---------------------------------------------------------------------- ours
def ours_loop(attention: str, seed: int = 0, precision: str = "fp32"):
    """(run(steps) -> seconds, close): saliency_rl's A2C loop, exactly as the trainer runs it."""
    from saliency_rl.algos.a2c import a2c_config
    from saliency_rl.algos.a2c_trainer import _Trainer
    from saliency_rl.runs import Run

    config = a2c_config(
        attention=attention, num_envs=NUM_ENVS, seed=seed, eval_episodes=0, precision=precision
    )
    trainer = _Trainer(
        Run(Path(tempfile.mkdtemp(prefix="a2c_speed_")), {}),
        f"atari:{GAME}",
        config,
        torch.device("cpu"),
        None,
        progress=False,
    )

    def run(steps: int) -> float:
        updates = max(1, steps // config.steps_per_update)
        start = time.perf_counter()
        for _ in range(updates):  # the inner loop of _Trainer.run, without logs and saves
            rollout = trainer.rollout()
            pairs = trainer.frames.sample(trainer.rng) if trainer.frames is not None else None
            trainer.agent.update(rollout, pairs)
        return time.perf_counter() - start

    return run, trainer.env.close


# ---------------------------------------------------------------------- SB3
def sb3_loop(seed: int = 0):
    """(run(steps) -> seconds, close): SB3's A2C with our network."""
    import ale_py
    import gymnasium as gym
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)

    class WuCNN(BaseFeaturesExtractor):
        """Ours: conv 32 8x8/4, 64 4x4/2, 32 3x3/1, linear 512 (SB3's NatureCNN: 64 last)."""

        def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 512) -> None:
            super().__init__(observation_space, features_dim)
            channels = observation_space.shape[0]
            self.cnn = nn.Sequential(
                nn.Conv2d(channels, 32, 8, stride=4),
                nn.ReLU(),
                nn.Conv2d(32, 64, 4, stride=2),
                nn.ReLU(),
                nn.Conv2d(64, 32, 3, stride=1),
                nn.ReLU(),
                nn.Flatten(),
            )
            self.linear = nn.Sequential(nn.Linear(32 * 7 * 7, features_dim), nn.ReLU())

        def forward(self, observations: torch.Tensor) -> torch.Tensor:
            return self.linear(self.cnn(observations))

    env = VecFrameStack(
        make_atari_env(f"{GAME}NoFrameskip-v4", n_envs=NUM_ENVS, seed=seed), n_stack=4
    )
    model = A2C(
        "CnnPolicy",
        env,
        learning_rate=7e-4,
        n_steps=5,
        gamma=0.99,
        ent_coef=0.01,
        vf_coef=0.5,
        max_grad_norm=0.5,
        rms_prop_eps=1e-5,
        use_rms_prop=True,
        policy_kwargs={"features_extractor_class": WuCNN},
        device="cpu",
        seed=seed,
        verbose=0,
    )
    # An empty Logger: SB3's default one makes a folder under /tmp at every learn().
    model.set_logger(Logger(folder=None, output_formats=[]))
    first = [True]

    def run(steps: int) -> float:
        start = time.perf_counter()
        model.learn(steps, reset_num_timesteps=first[0])
        first[0] = False
        return time.perf_counter() - start

    return run, env.close


# ---------------------------------------------------------------------- measuring
def frames_per_second(run, steps: int) -> tuple[float, float]:
    """(frames per wall-clock second, frames per CPU second of this process, all threads)."""
    cpu = time.process_time()
    wall = run(steps)
    return FRAME_SKIP * steps / wall, FRAME_SKIP * steps / (time.process_time() - cpu)


def profile(run, steps: int, functions: dict[str, str]) -> dict[str, float]:
    """Share of the loop's time in each named function (cProfile cumulative time; a label's
    functions, ``file:function`` separated by ``|``, must not call one another)."""
    profiler = cProfile.Profile()
    profiler.enable()
    total = run(steps)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    shares = {}
    for label, patterns in functions.items():
        cumulative = 0.0
        for pattern in patterns.split("|"):
            file_part, name = pattern.rsplit(":", 1)
            cumulative += sum(
                entry[3]
                for (path, _, function), entry in stats.stats.items()
                if function == name and path.replace(os.sep, "/").endswith(file_part)
            )
        shares[label] = cumulative / total
    return {"seconds": total, **shares}


OURS_PARTS = {
    "env stepping (ale-py vector env)": "envs/atari_vector.py:send|envs/atari_vector.py:recv",
    "acting forward passes": "algos/a2c.py:explore",
    "update (returns, backward, RMSprop)": "algos/a2c.py:update",
    "  of which attention loss": "models/attention.py:loss",
    "attention pair sampling": "algos/a2c_trainer.py:sample",
}
SB3_PARTS = {
    "env stepping (DummyVecEnv + wrappers)": "vec_env/base_vec_env.py:step",
    "acting forward passes": "common/policies.py:forward",
    "update (train)": "stable_baselines3/a2c/a2c.py:train",
}


def machine() -> str:
    gpu = "no GPU" if not torch.cuda.is_available() else torch.cuda.get_device_name()
    return f"{cpu_model()}, {os.cpu_count()} cores, {gpu}; Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4000, help="timed agent steps (4000)")
    parser.add_argument("--warmup", type=int, default=800, help="untimed agent steps (800)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, both (1)")
    parser.add_argument("--profile", action="store_true", help="also profile each loop")
    parser.add_argument(
        "--precision",
        choices=("fp32", "bf16", "auto"),
        default="fp32",
        help="our trainer's --precision (fp32; auto times both on this CPU and keeps the faster)",
    )
    parser.add_argument("--out", default="benchmarks/results", help="results directory")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite a2c_speed.md from a2c_speed.json"
    )
    args = parser.parse_args()
    if args.render:
        result = json.loads((Path(args.out) / "a2c_speed.json").read_text())
        atomic_write_text(Path(args.out) / "a2c_speed.md", markdown(result))
        return
    torch.set_num_threads(args.threads)

    loops = {
        "ours": lambda: ours_loop("none", precision=args.precision),
        "ours + joint attention": lambda: ours_loop("joint", precision=args.precision),
        "sb3": sb3_loop,
    }
    built = {name: make() for name, make in loops.items()}
    for name, (run, _) in built.items():
        print(f"warm-up {name}", file=sys.stderr)
        run(args.warmup)
    measured: dict[str, list[float]] = {name: [] for name in loops}
    per_cpu: dict[str, list[float]] = {name: [] for name in loops}
    loads = []
    for round_ in range(args.rounds):
        loads.append(os.getloadavg()[0])
        for name, (run, _) in built.items():
            fps, cpu_fps = frames_per_second(run, args.steps)
            measured[name].append(fps)
            per_cpu[name].append(cpu_fps)
            print(
                f"round {round_ + 1} {name}: {fps:.0f} frames/s, {cpu_fps:.0f} per CPU second",
                file=sys.stderr,
            )
    profiles = {}
    if args.profile:
        parts = {"ours": OURS_PARTS, "ours + joint attention": OURS_PARTS, "sb3": SB3_PARTS}
        for name, (run, _) in built.items():
            profiles[name] = profile(run, args.steps, parts[name])
            print(f"profile {name}: {profiles[name]}", file=sys.stderr)
    for _, close in built.values():
        close()

    median = {name: statistics.median(values) for name, values in measured.items()}
    median_cpu = {name: statistics.median(values) for name, values in per_cpu.items()}
    speedup = median["ours"] / median["sb3"]
    # The same round's ratio, so that load from other processes cancels out
    ratios = [o / s for o, s in zip(measured["ours"], measured["sb3"], strict=True)]
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python " + " ".join(sys.argv),
        "machine": machine(),
        "load_average_at_end": os.getloadavg(),
        "load_average_1min_per_round": loads,
        "versions": {
            p: version(p)
            for p in ("saliency-rl", "torch", "stable-baselines3", "ale-py", "gymnasium", "numpy")
        },
        "setting": {
            "game": GAME,
            "num_envs": NUM_ENVS,
            "num_steps": 5,
            "frame_skip": FRAME_SKIP,
            "frame_stack": 4,
            "image": "84x84 grey",
            "torch_threads": args.threads,
            "precision": args.precision,
            "timed_agent_steps": args.steps,
            "warmup_agent_steps": args.warmup,
            "frames_counted_as": "agent steps summed over the envs x frame skip 4",
        },
        "frames_per_second": measured,
        "median_frames_per_second": median,
        "frames_per_cpu_second": per_cpu,
        "median_frames_per_cpu_second": median_cpu,
        "speedup_vs_sb3": speedup,
        "speedup_per_round": ratios,
        "speedup_per_cpu_second": median_cpu["ours"] / median_cpu["sb3"],
        "joint_attention_vs_sb3": median["ours + joint attention"] / median["sb3"],
        "target": TARGET,
        "target_met": speedup >= TARGET,
        "profile": profiles,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "a2c_speed.json", result)
    atomic_write_text(out / "a2c_speed.md", markdown(result))
    print(markdown(result))


def markdown(result: dict) -> str:
    median, measured = result["median_frames_per_second"], result["frames_per_second"]
    lines = [
        "# A2C training speed: frames per second, 16 environments",
        "",
        f"- date: {result['date']}",
        f"- command: `{result['command']}`",
        f"- machine: {result['machine']}; load average at the end "
        f"{', '.join(f'{x:.1f}' for x in result['load_average_at_end'])} (a shared machine)",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()),
        f"- setting: atari:{result['setting']['game']}, 16 envs x 5 steps, frame skip 4, 84x84 "
        f"grey, 4 frames; torch threads {result['setting']['torch_threads']}; our precision "
        f"{result['setting'].get('precision', 'fp32')}; "
        f"{result['setting']['timed_agent_steps']} timed agent steps per measurement after "
        f"{result['setting']['warmup_agent_steps']} untimed; frames = agent steps x 4",
        "",
        "| trainer | frames/s (median) | rounds | vs SB3 | frames per CPU second | vs SB3 |",
        "|---|---:|---|---:|---:|---:|",
    ]
    cpu = result["median_frames_per_cpu_second"]
    for name in median:
        rounds = ", ".join(f"{x:.0f}" for x in measured[name])
        lines.append(
            f"| {name} | {median[name]:.0f} | {rounds} | {median[name] / median['sb3']:.2f}x "
            f"| {cpu[name]:.0f} | {cpu[name] / cpu['sb3']:.2f}x |"
        )
    verdict = "met" if result["target_met"] else "missed"
    per_round = ", ".join(f"{x:.2f}x" for x in result["speedup_per_round"])
    loads = ", ".join(f"{x:.1f}" for x in result["load_average_1min_per_round"])
    lines += [
        "",
        f"Target: ours at least {result['target']}x SB3 in frames/s: **{verdict}** "
        f"({result['speedup_vs_sb3']:.2f}x of the medians; per round {per_round}; 1-minute "
        f"load average at the start of each round {loads}).",
        "",
        "Frames per CPU second divide by the CPU time of the benchmark process (all its "
        "threads): the work each trainer needs per frame, less sensitive to other processes "
        "than wall-clock time on a shared machine.",
    ]
    if result["profile"]:
        lines += ["", "## Where the time goes (cProfile, share of the loop's wall time)", ""]
        for name, shares in result["profile"].items():
            parts = ", ".join(
                f"{label.strip()} {share:.0%}"
                for label, share in shares.items()
                if label != "seconds"
            )
            lines.append(f"- {name}: {parts}")
    profiles = result["profile"]
    if "ours" in profiles and "sb3" in profiles:
        ours, sb3 = profiles["ours"], profiles["sb3"]
        fps = result["median_frames_per_second"]

        def per_frame(shares: dict, label: str, name: str) -> float:
            return shares[label] / fps[name]

        pairs = [
            ("stepping the envs", "env stepping (ale-py vector env)", "env stepping (DummyVecEnv + wrappers)"),
            ("acting", "acting forward passes", "acting forward passes"),
            ("updating", "update (returns, backward, RMSprop)", "update (train)"),
        ]  # fmt: skip
        ratios = ", ".join(
            f"{per_frame(ours, a, 'ours') / per_frame(sb3, b, 'sb3'):.0%} of SB3's time {what}"
            for what, a, b in pairs
        )
        lines += [
            "",
            f"Per frame (profile shares / median frames per second), ours spends {ratios}.",
        ]
    lines += ["", "## Why", "", *NOTES]
    return "\n".join(lines) + "\n"


NOTES = [
    "- Both trainers emulate the same games with the same ALE; what differs is around it. "
    "Ours steps the 16 games in ale-py's C++ vector env (preprocessing and frame stacking "
    "in C++, no Python per env and step; uint8 observations until the network), SB3 "
    "steps them one by one through Python wrappers (AtariWrapper, DummyVecEnv, "
    "VecFrameStack, VecTransposeImage).",
    "- Ours keeps the graph of the 5 acting forward passes and back-propagates through "
    "it (the parameters do not change during a rollout), so the update needs no second "
    "forward pass over the 80 observations; SB3 runs that forward pass again in train().",
    "- Ours runs the convolutions channels-last (about 25% faster forward and backward on "
    "this CPU with oneDNN) and converts uint8 frames to float in that layout in one copy.",
    "- On this shared 2-core machine the process gets about one core (frames per CPU second "
    "~ frames per second): ale-py's 2 emulator threads used no more CPU time than wall "
    "time, and 2 torch threads were much slower than 1 for both trainers (OpenMP threads "
    "spin while other processes hold the cores). Splitting the native envs into 2 groups "
    "that step while the network acts for the other group (`vector_groups=2`) was no "
    "faster here; it can pay on a machine with idle cores.",
    "- Joint attention costs 2.4x the plain agent: the mask network runs on every acting "
    "pass, and each update trains the module on 16 frame pairs, whose decoder (transposed "
    "convolutions up to 16 x 84 x 84 activations, twice: transported and autoencoded "
    "features) dominates its cost; that architecture is the official code's.",
]


if __name__ == "__main__":
    main()
