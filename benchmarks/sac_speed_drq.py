"""SAC update speed of the ``drq`` preset's networks on the CPU: fp32 against bf16, and each
speed lever of issue 23 measured on its own.

Sections (``--only`` runs some; results merge into one JSON, the markdown is rewritten
from it, so the sections can run one at a time on a shared machine):

- ``precision``: one forward + backward of the drq networks (``SACAgent.precision_trial``:
  encoder, target encoder and critic, M = 2 shifted copies with gradients, K = 2 without)
  in fp32 and in bf16 autocast, at 84 px and 64 px, batch 512, and at the batch that
  ``--precision auto`` times (``sac_trainer.PRECISION_TRIAL_BATCH``);
- ``updates``: whole ``SACAgent.update`` calls (replay sampling, shifts, encoder, critic,
  actor, temperature, targets) per second, for the drq preset, cheaper variants of it, and
  the DrQ-v2 setting of the issue (84 px, 3 frames, batch 256, 4-layer encoder, shift,
  1024-wide heads, online-encoder targets, K = M = 1);
- ``levers``: the shift (per-pixel gather vs row gather), the encoder input (fp32 NCHW,
  then channels-last, then autocast's cast, vs uint8 channels-last converted once),
  channels-last vs NCHW convolutions, one batched encoder call for obs and next_obs vs two,
  fused vs foreach Adam, 1 vs 2 torch threads, glibc's allocator defaults vs
  ``allocator.keep_freed_memory``.

Every figure is the median of interleaved repeats after an untimed warm-up; the load
average is recorded beside each section because the machine is shared.

    python benchmarks/sac_speed_drq.py                     # everything (about 5 minutes)
    python benchmarks/sac_speed_drq.py --only precision
    python benchmarks/sac_speed_drq.py --only markdown --official OFFICIAL.json --notes NOTES.md
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from machine_info import cpu_model, package_versions

from saliency_rl.algos.rad import shift_fields
from saliency_rl.algos.sac import sac_config
from saliency_rl.algos.sac_inputs import StepInputs
from saliency_rl.algos.sac_trainer import PRECISION_TRIAL_BATCH, build_agent
from saliency_rl.allocator import keep_freed_memory
from saliency_rl.data.atomic import atomic_write_json, atomic_write_text
from saliency_rl.data.replay import ReplayBuffer
from saliency_rl.precision import autocast, bf16_supported, time_precisions

RESULTS = Path(__file__).parent / "results"
SECTIONS = ("precision", "updates", "levers")
ACTION_DIM = 6  # walker's; the heads' cost hardly depends on it
CPU = torch.device("cpu")
# The DrQ-v2 setting of issue 23 on our agent: its encoder, heads and batch, one shift, the
# online encoder's features for the targets, actor and targets moved at every update.
DRQV2 = dict(
    batch_size=256,
    target_augs=1,
    q_augs=1,
    target_encoder=False,
    actor_update_every=1,
    target_update_every=1,
)


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median milliseconds of ``fn`` over ``repeats`` calls after one untimed call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def interleaved_ms(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median milliseconds per function, the calls interleaved (a, b, a, b, ...)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: round(1000 * statistics.median(t), 2) for name, t in times.items()}


def drq_agent(size: int, precision: str = "fp32", **overrides: object) -> tuple:
    """(agent, inputs, config) of the drq preset at ``size`` px, 3 frames."""
    torch.manual_seed(0)
    config = sac_config("drq", **overrides)
    inputs = StepInputs("cnn", "rgb", frames=3, frame_channels=3, image_size=size)
    return build_agent(config, inputs, ACTION_DIM, CPU, precision), inputs, config


def filled_replay(inputs: StepInputs, transitions: int = 1000) -> ReplayBuffer:
    g = torch.Generator().manual_seed(0)
    shape = inputs.fields["rgb"][0]
    replay = ReplayBuffer(transitions + 1, inputs.fields, ACTION_DIM, seed=0)

    def frame() -> dict[str, torch.Tensor]:
        return {"rgb": torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)}

    replay.start(frame())
    for _ in range(transitions):
        replay.add(torch.rand(ACTION_DIM, generator=g) * 2 - 1, 0.5, frame(), False)
    return replay


def load() -> float:
    return round(os.getloadavg()[0], 2)


# ---------------------------------------------------------------------- sections
def section_precision(args: argparse.Namespace) -> dict:
    rows = []
    for size, batch in ((84, 512), (64, 512), (84, PRECISION_TRIAL_BATCH)):
        agent, inputs, config = drq_agent(size)
        trial = agent.precision_trial(inputs.fields, batch)
        seconds = time_precisions(trial, CPU, budget_s=0.0, min_rounds=args.repeats)
        fp32, bf16 = 1000 * seconds["fp32"], 1000 * seconds["bf16"]
        rows.append(
            {
                "image_size": size,
                "batch": batch,
                "q_augs": config.q_augs,
                "target_augs": config.target_augs,
                "fp32_ms": round(fp32, 1),
                "bf16_ms": round(bf16, 1),
                "bf16_speedup": round(fp32 / bf16, 2),
                "load": load(),
            }
        )
        print(rows[-1], flush=True)
    return {"rows": rows, "bf16_native": bf16_supported(CPU)}


UPDATE_CASES = (
    ("drq preset (B512, K=M=2, target encoder)", 84, {}, ("fp32", "bf16")),
    ("drq, B256, K=M=2", 84, dict(batch_size=256), ("bf16",)),
    ("drq, B128, K=M=2", 84, dict(batch_size=128), ("bf16",)),
    ("drq, B256, K=M=1", 84, dict(batch_size=256, target_augs=1, q_augs=1), ("bf16",)),
    ("drq, B128, K=M=1", 84, dict(batch_size=128, target_augs=1, q_augs=1), ("bf16",)),
    ("drq preset at 64 px", 64, {}, ("bf16",)),
    (
        "DrQ-v2 setting (B256, K=M=1, online-encoder targets, actor every update)",
        84,
        DRQV2,
        ("fp32", "bf16"),
    ),
)


def section_updates(args: argparse.Namespace) -> dict:
    rows = []
    for name, size, overrides, precisions in UPDATE_CASES:
        for precision in precisions:
            agent, inputs, config = drq_agent(size, precision, **overrides)
            replay = filled_replay(inputs)

            def update(agent=agent, replay=replay, batch=config.batch_size) -> None:
                agent.update(replay.sample(batch))

            repeats = max(2, args.repeats - 1) if config.batch_size >= 512 else args.repeats
            ms = median_ms(update, repeats)
            rows.append(
                {
                    "case": name,
                    "image_size": size,
                    "batch": config.batch_size,
                    "q_augs": config.q_augs,
                    "target_augs": config.target_augs,
                    "target_encoder": config.target_encoder,
                    "precision": precision,
                    "ms_per_update": round(ms, 1),
                    "updates_per_s": round(1000 / ms, 3),
                    "load": load(),
                }
            )
            print(rows[-1], flush=True)
    return {"rows": rows}


def _gather_shift(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """The per-pixel gather that ``algos.rad`` used before the row gather (the baseline)."""
    n, _, height, width = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (2, n, 1), generator=generator) - pad
    rows = (torch.arange(height) + offsets[0]).clamp_(0, height - 1)
    cols = (torch.arange(width) + offsets[1]).clamp_(0, width - 1)
    batch = torch.arange(n)[:, None, None]
    return x[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def section_levers(args: argparse.Namespace) -> dict:
    out: dict[str, dict] = {}
    r = args.repeats
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (512, 9, 84, 84), dtype=torch.uint8)
    out["shift_512x9x84x84_uint8"] = interleaved_ms(
        {
            "per-pixel gather (before)": lambda: _gather_shift(frames, 4, g),
            "row gather (now)": lambda: shift_fields({"rgb": frames}, 4, g),
            "row gather, 2 copies (DrQ K or M = 2)": lambda: shift_fields(
                {"rgb": frames}, 4, g, copies=2
            ),
        },
        r,
    )
    half = frames[:256]
    last = torch.channels_last
    out["encoder_input_256x9x84x84"] = interleaved_ms(
        {
            "fp32: float NCHW, then channels-last (before)": lambda: (
                half.float().div_(255).sub_(0.5).contiguous(memory_format=last)
            ),
            "fp32: channels-last uint8, then float (now)": lambda: (
                half.contiguous(memory_format=last).float().div_(255).sub_(0.5)
            ),
            "bf16: float NCHW, channels-last, autocast's cast (before)": lambda: (
                half.float().div_(255).sub_(0.5).contiguous(memory_format=last).to(torch.bfloat16)
            ),
            "bf16: channels-last uint8, then bf16 (now)": lambda: (
                half.contiguous(memory_format=last).to(torch.bfloat16).div_(255).sub_(0.5)
            ),
        },
        r,
    )
    # Channels-last against NCHW: the convolutions alone, forward + backward, batch 256.
    agent, inputs, _ = drq_agent(84)
    convs = agent.encoder.cnn.convs
    x = half.float().div_(255).sub_(0.5)
    x_last = x.contiguous(memory_format=last)

    def conv_step(inp: torch.Tensor, precision: str) -> None:
        for p in convs.parameters():
            p.grad = None
        with autocast(precision, CPU):
            y = convs(inp)
        y.float().mean().backward()

    out["convs_fwd_bwd_256x84"] = interleaved_ms(
        {
            f"{precision} {layout}": (lambda i=inp, p=precision: conv_step(i, p))
            for precision in ("fp32", "bf16")
            for layout, inp in (("NCHW", x), ("channels-last", x_last))
        },
        r,
    )
    # One encoder call for obs and next_obs (with gradients, the second half detached)
    # against two (the second without gradients), DrQ-v2 setting, bf16.
    agent, inputs, _ = drq_agent(84, "bf16", **DRQV2)
    replay = filled_replay(inputs)
    batch = replay.sample(256)
    obs = shift_fields(batch.obs, 4, g)
    next_obs = shift_fields(batch.next_obs, 4, g)
    both = {"rgb": torch.cat([obs["rgb"], next_obs["rgb"]])}
    encoder, critic = agent.encoder, agent.critic
    action = batch.action

    def separate() -> None:
        encoder.zero_grad(set_to_none=True)
        with autocast("bf16", CPU):
            h = encoder(obs)
            with torch.no_grad():
                encoder(next_obs)
            q1, _ = critic(h, action)
        q1.mean().backward()

    def batched() -> None:
        encoder.zero_grad(set_to_none=True)
        with autocast("bf16", CPU):
            h = encoder(both)
            h[256:].detach()
            q1, _ = critic(h[:256], action)
        q1.mean().backward()

    out["encoder_calls_bf16_B256"] = interleaved_ms(
        {"two calls (now)": separate, "one batched call": batched}, r
    )
    # Fused against foreach Adam over the encoder and critic (the critic optimiser).
    params = [p for p in [*agent.encoder.parameters(), *agent.critic.parameters()]]
    for p in params:
        p.grad = torch.randn_like(p)
    fused = torch.optim.Adam(copy.deepcopy(params), lr=1e-3, fused=True)
    foreach = torch.optim.Adam(copy.deepcopy(params), lr=1e-3, foreach=True)
    for opt in (fused, foreach):
        for p in opt.param_groups[0]["params"]:
            p.grad = torch.randn_like(p)
    out["adam_step_encoder_critic"] = interleaved_ms(
        {"fused (now)": fused.step, "foreach": foreach.step}, r
    )
    # Process-level levers, each case in fresh processes (DrQ-v2 setting, bf16), two rounds
    # interleaved: glibc's allocator defaults against keep_freed_memory (the CLI's), and on
    # 2 cores one run of 2 threads against two runs of 1 thread side by side.
    cases = {
        "1 run, 1 thread, glibc defaults": [(1, False)],
        "1 run, 1 thread, keep_freed_memory (now)": [(1, True)],
        "1 run, 2 threads": [(2, True)],
        "2 runs side by side, 1 thread each": [(1, True), (1, True)],
    }
    measured: dict[str, list[list[float]]] = {name: [] for name in cases}
    for _ in range(2):
        for name, runs in cases.items():
            measured[name].append(child_updates(runs, r + 1))
    out["processes_bf16_drqv2_ms_per_update"] = {
        name: [round(statistics.median(col), 1) for col in zip(*rounds, strict=True)]
        for name, rounds in measured.items()
    }
    out["load"] = load()
    print(json.dumps(out, indent=1), flush=True)
    return out


def child_updates(runs: list[tuple[int, bool]], updates: int) -> list[float]:
    """ms per update of each of ``runs`` (threads, keep_freed_memory) run at once in fresh
    processes (``--child``)."""
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", str(threads), str(int(keep)), str(updates)],
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, OMP_NUM_THREADS=str(threads)),
        )
        for threads, keep in runs
    ]
    return [float(p.communicate()[0].split()[-1]) for p in procs]


def child(threads: int, keep: bool, updates: int) -> None:
    """One process's median ms per update, DrQ-v2 setting, bf16 (printed last)."""
    torch.set_num_threads(threads)
    keep_freed_memory(keep)
    agent, inputs, _ = drq_agent(84, "bf16", **DRQV2)
    replay = filled_replay(inputs)
    print(median_ms(lambda: agent.update(replay.sample(256)), updates))


# ---------------------------------------------------------------------- results
def markdown(r: dict) -> str:
    lines = [
        "# SAC speed of the drq preset on the CPU: fp32 vs bf16, and each lever measured",
        "",
        f"Machine: {r['machine']['cpu']} ({r['machine']['cpus']} CPUs, flags: "
        f"{', '.join(r['machine']['bf16_flags']) or 'no bf16 flags'}), one torch thread "
        "unless said, shared with other jobs (load average beside each figure). Versions: "
        f"{r['versions']}. Date of the last section: {r['date']}. Figures are medians of "
        "interleaved repeats after a warm-up call.",
        "",
        f"Command: `{r['command']}` (sections: `--only precision|updates|levers`).",
        "",
    ]
    p = r.get("precision")
    if p:
        lines += [
            "## fp32 vs bf16: one forward + backward of the drq networks",
            "",
            "Encoder (4 conv layers of 32 filters), its target copy and the critic, as in",
            "the preset's critic step: M = 2 shifted copies of the batch with gradients, K = 2",
            "of the next observations without (`SACAgent.precision_trial`, the trial that",
            "`--precision auto` times). bf16: `torch.autocast` (weights, gradients, Adam in",
            f"fp32). oneDNN reports native bf16 here: {p['bf16_native']}.",
            "",
            "| frames | batch | fp32 ms | bf16 ms | bf16 speed-up | load |",
            "|---|---|---|---|---|---|",
        ]
        for row in p["rows"]:
            lines.append(
                f"| {row['image_size']} px | {row['batch']} | {row['fp32_ms']:.0f} | "
                f"{row['bf16_ms']:.0f} | {row['bf16_speedup']:.2f}x | {row['load']} |"
            )
        lines.append("")
    u = r.get("updates")
    if u:
        lines += [
            "## Whole updates per second",
            "",
            "`SACAgent.update` on batches sampled from a replay of 1000 random 84x84x9",
            "transitions: sampling, shifts, encoder, critic, actor and temperature (every 2nd",
            "update), targets. The cost of one update scales with batch x (3 M + K (1 + target",
            "encoder)) encoder passes of the batch (a backward costs about two forwards).",
            "",
            "| case | frames | batch | K | M | target encoder | precision | ms/update | "
            "updates/s | load |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in u["rows"]:
            lines.append(
                f"| {row['case']} | {row['image_size']} px | {row['batch']} | "
                f"{row['target_augs']} | {row['q_augs']} | {row['target_encoder']} | "
                f"{row['precision']} | {row['ms_per_update']:.0f} | {row['updates_per_s']:.2f} "
                f"| {row['load']} |"
            )
        lines.append("")
    official = r.get("official")
    if official:
        lines += [
            "## The official DrQ-v2 agent, same machine",
            "",
            official["note"],
            "",
            "| agent | precision | ms/update | updates/s |",
            "|---|---|---|---|",
        ]
        for row in official["rows"]:
            lines.append(
                f"| {row['agent']} | {row['precision']} | {row['ms_per_update']:.0f} | "
                f"{row['updates_per_s']:.2f} |"
            )
        lines.append("")
    levers = r.get("levers")
    if levers:
        lines += ["## Levers, one at a time (milliseconds, lower is better)", ""]
        for name, values in levers.items():
            if name == "load":
                continue
            text = "; ".join(
                f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {' / '.join(map(str, v))}"
                for k, v in values.items()
            )
            lines.append(f"**{name}**: {text}")
            lines.append("")
        lines.append(f"Load average after the levers: {levers['load']}.")
        lines.append("")
    if r.get("notes"):
        lines += ["## What paid, what did not", "", r["notes"], ""]
    return "\n".join(lines)


def bf16_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])  # fmt: skip
    return [f for f in ("avx512_bf16", "amx_bf16", "amx_tile") if f in flags]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=(*SECTIONS, "markdown"), help="sections")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per figure")
    parser.add_argument("--official", help="JSON of the official DrQ-v2 agent's update timing")
    parser.add_argument("--notes", help="a text file: what paid and what did not")
    parser.add_argument("--out", default=str(RESULTS / "sac_speed_drq"), help="results stem")
    parser.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], bool(args.child[1]), args.child[2])
    torch.set_num_threads(1)
    keep_freed_memory()  # as `saliency-rl train sac` does
    out = Path(args.out)
    result = (
        json.loads(out.with_suffix(".json").read_text())
        if out.with_suffix(".json").exists()
        else {}
    )
    for name in args.only or SECTIONS:
        if name in SECTIONS:
            result[name] = globals()[f"section_{name}"](args)
    if args.official:
        result["official"] = json.loads(Path(args.official).read_text())
    if args.notes:
        result["notes"] = Path(args.notes).read_text().strip()
    if any(name in SECTIONS for name in args.only or SECTIONS):  # a measurement, not a re-render
        result.update(
            benchmark="sac_speed_drq",
            date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            command="python " + " ".join(["benchmarks/sac_speed_drq.py", *sys.argv[1:]]),
            machine={"cpu": cpu_model(), "cpus": os.cpu_count(), "bf16_flags": bf16_flags()},
            versions=package_versions(("torch", "numpy")),
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out.with_suffix(".json"), result)
    atomic_write_text(out.with_suffix(".md"), markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
