"""MultiMAE speed and quality on this machine, at ViSaRL's size (encoder depth 4, width 256).

Measured, in one run:
1. the CPU's peak: theoretical (cores x AVX-512 lanes x 2 for FMA x FMA units x clock) and
   practical (a large float32 matmul);
2. FLOPs of the model, counted with torch.utils.flop_counter and analytically;
3. pretraining throughput (images/s) and achieved GFLOP/s, RGB + saliency, 64x64, batch 64;
4. frozen-encoder feature extraction: latency of one frame and throughput of a batch;
5. reconstruction loss per modality after a fixed budget, on a Meta-World and a DMC dataset
   with oracle saliency (maps from the simulator's salient points; the learned predictor's
   ``label`` command did not exist yet), on held-out episodes with fixed masks.

Usage:
    python benchmarks/multimae.py [--out benchmarks/results] [--work /tmp/multimae_bench]
        [--timed-steps 6] [--budget-steps 100] [--budget-batch 32]
Writes multimae.json and multimae.md under --out. The datasets are collected into --work
(reused when present). The machine is shared, so the load average is recorded beside the
timings.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from saliency_rl.data.atomic import atomic_write_json, atomic_write_text
from saliency_rl.data.collect import collect
from saliency_rl.data.dataset import Dataset
from saliency_rl.models.frozen_encoder import FrozenMultiMAEEncoder
from saliency_rl.models.multimae import MultiMAE, multimae_visarl, prepare_inputs
from saliency_rl.pretrain.multimae_pretrain import pretrain_multimae
from saliency_rl.saliency.maps import clicks_to_map, map_to_uint8

SIZE = 64
DATASETS = {
    # spec: (collect options, policy, train episodes, held-out episodes)
    "metaworld:drawer-open": ({"image_size": SIZE, "episode_length": 100}, "expert", 8, 2),
    "dmc:cartpole-swingup": (
        {"image_size": SIZE, "episode_length": 100, "action_repeat": 4},
        "random",
        8,
        2,
    ),
}


# ---------------------------------------------------------------------- machine
def machine() -> dict:
    info = {"cpu": platform.processor() or "unknown", "cores": os.cpu_count(), "clock_mhz": None}
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name":
                info["cpu"] = value.strip()
            elif key == "cpu MHz" and info["clock_mhz"] is None:
                info["clock_mhz"] = float(value)
            elif key == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    info["avx512"] = "avx512f" in flags
    info["fma"] = "fma" in flags
    info["python"] = platform.python_version()
    info["torch_threads"] = torch.get_num_threads()
    info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    packages = ["torch", "numpy", "mujoco", "dm-control", "metaworld"]
    info["versions"] = {"saliency-rl": version("saliency-rl")}
    info["versions"].update({p: version(p) for p in packages})
    return info


def theoretical_peak_gflops(info: dict, fma_units: int = 2) -> float | None:
    """cores x fp32 lanes x 2 (a fused multiply-add is 2 FLOPs) x FMA units x clock."""
    if not info["clock_mhz"]:
        return None
    lanes = 16 if info["avx512"] else 8
    return info["cores"] * lanes * 2 * fma_units * info["clock_mhz"] / 1000


def matmul_gflops(n: int = 2048, repeats: int = 30, threads: int | None = None) -> float:
    """Best-of achieved GFLOP/s of an n x n float32 matmul: the practical peak."""
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        best = float("inf")
        for _ in range(repeats):
            tick = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - tick)
        return 2 * n**3 / best / 1e9
    finally:
        torch.set_num_threads(old)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ---------------------------------------------------------------------- FLOPs
def synthetic_batch(n: int, modalities=("rgb", "saliency")) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    raw = {
        "rgb": torch.randint(0, 256, (n, 3, SIZE, SIZE), generator=g, dtype=torch.uint8),
        "saliency": torch.randint(0, 256, (n, SIZE, SIZE), generator=g, dtype=torch.uint8),
    }
    return prepare_inputs(raw, modalities)


def counted_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def analytic_forward_flops(
    model: MultiMAE, modalities: int, encoded_tokens: int, decode: bool = True
) -> int:
    """Multiply-adds x 2 of the linear layers, convolutions and attention products."""
    c = model.config
    lm, p = c.tokens_per_modality, c.patch_size
    d, dd, r = c.dim, c.decoder_dim, c.mlp_ratio

    def block(t: int, w: int) -> float:  # one pre-norm transformer block on t tokens
        return 2 * (t * w * 3 * w + 2 * t * t * w + t * w * w + 2 * t * w * int(w * r))

    channels = list(c.channels.values())[:modalities]
    flops = sum(2 * lm * ch * p * p * d for ch in channels)  # patch embeddings
    t = encoded_tokens + 1
    flops += c.depth * block(t, d)
    if decode:
        for ch in channels:
            flops += 2 * t * d * dd  # proj_context
            flops += 2 * (lm * dd * dd + t * dd * 2 * dd + 2 * lm * t * dd + lm * dd * dd)
            flops += 2 * 2 * lm * dd * int(dd * r)  # MLP after the cross-attention
            flops += c.decoder_depth * block(lm, dd)
            flops += 2 * lm * dd * p * p * ch  # head
    return int(flops)


# ---------------------------------------------------------------------- throughput
def train_step_seconds(model: MultiMAE, batch: int, steps: int, warmup: int = 2) -> list[float]:
    inputs = synthetic_batch(batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95))
    times = []
    for i in range(warmup + steps):
        tick = time.perf_counter()
        out = model(inputs)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        if i >= warmup:
            times.append(time.perf_counter() - tick)
    return times


def pretraining_throughput(batch: int, steps: int, peak: dict) -> list[dict]:
    torch.manual_seed(0)
    model = multimae_visarl(("rgb", "saliency"))
    k = model.num_visible(2 * model.config.tokens_per_modality)
    inputs = synthetic_batch(batch)

    def step() -> None:
        out = model(inputs)
        out.loss.backward()

    flops = counted_flops(step)
    model.zero_grad(set_to_none=True)
    analytic = 3 * batch * analytic_forward_flops(model, 2, k)
    rows = []
    for threads in sorted({1, torch.get_num_threads()}):
        old = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            before = load_average()
            times = train_step_seconds(model, batch, steps)
        finally:
            torch.set_num_threads(old)
        median = statistics.median(times)
        gflops = analytic / median / 1e9
        rows.append(
            {
                "threads": threads,
                "batch": batch,
                "step_seconds_median": median,
                "step_seconds": times,
                "images_per_second": batch / median,
                "flops_per_step_counted": flops,
                "flops_per_step_analytic": analytic,
                "achieved_gflops": gflops,
                "share_of_practical_peak": gflops / peak["practical"][str(threads)],
                "share_of_theoretical_peak": (
                    gflops / (peak["theoretical"] * threads / peak["cores"])
                    if peak["theoretical"]
                    else None
                ),
                "load_average_before": before,
            }
        )
        print(f"pretraining, {threads} thread(s): {batch / median:.1f} images/s", flush=True)
    return rows


def feature_extraction(threads: int) -> list[dict]:
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _feature_extraction()
    finally:
        torch.set_num_threads(old)


def _feature_extraction() -> list[dict]:
    torch.manual_seed(0)
    model = multimae_visarl(("rgb", "saliency"))
    rows = []
    g = torch.Generator().manual_seed(0)
    for mode in ("rgb+saliency-pretrain-only", "rgb+saliency"):
        encoder = FrozenMultiMAEEncoder(model, mode)
        for batch, repeats in ((1, 40), (256, 4)):
            rgb = torch.randint(0, 256, (batch, 3, SIZE, SIZE), generator=g, dtype=torch.uint8)
            maps = torch.rand(batch, 1, SIZE, SIZE, generator=g) if mode == "rgb+saliency" else None
            encoder.encode_torch(rgb, maps)
            modalities = 2 if mode == "rgb+saliency" else 1
            tokens = modalities * model.config.tokens_per_modality
            flops = batch * analytic_forward_flops(model, modalities, tokens, decode=False)
            times = []
            for _ in range(repeats):
                tick = time.perf_counter()
                encoder.encode_torch(rgb, maps)
                times.append(time.perf_counter() - tick)
            median = statistics.median(times)
            rows.append(
                {
                    "mode": mode,
                    "batch": batch,
                    "threads": torch.get_num_threads(),
                    "seconds_median": median,
                    "ms_per_frame": 1000 * median / batch,
                    "frames_per_second": batch / median,
                    "gflop_per_frame": flops / batch / 1e9,  # analytic
                    "achieved_gflops": flops / median / 1e9,
                }
            )
            print(
                f"features {mode} batch {batch}, {torch.get_num_threads()} thread(s): "
                f"{1000 * median / batch:.2f} ms/frame",
                flush=True,
            )
    return rows


# ---------------------------------------------------------------------- reconstruction
def oracle_saliency(dataset: Dataset) -> None:
    """Write `saliency` maps made from each frame's in-image salient points."""
    if dataset.has_field("saliency"):
        return
    height, width = dataset.image_size
    for e in range(dataset.num_episodes):
        points = dataset.episode(e, ["salient_points"])["salient_points"]  # (T, P, 2)
        maps = []
        for frame in points:
            inside = frame[
                np.isfinite(frame).all(1)
                & (frame[:, 0] >= 0)
                & (frame[:, 0] < width)
                & (frame[:, 1] >= 0)
                & (frame[:, 1] < height)
            ]
            maps.append(map_to_uint8(clicks_to_map(inside, height, width)))
        dataset.write_field(
            "saliency", e, np.stack(maps), provenance={"source": "oracle salient points"}
        )


def prepare_dataset(work: Path, spec: str, split: str) -> Dataset:
    options, policy, train_episodes, eval_episodes = DATASETS[spec]
    path = work / f"{spec.replace(':', '_')}_{split}"
    if not (path / "meta.json").exists():
        episodes = train_episodes if split == "train" else eval_episodes
        seed = 0 if split == "train" else 10_000
        collect(
            spec, path, episodes=episodes, policy=policy, seed=seed, env_options=options,
            progress=False,
        )  # fmt: skip
    dataset = Dataset.open(path)
    oracle_saliency(dataset)
    return dataset


@torch.no_grad()
def held_out_losses(model: MultiMAE, dataset: Dataset, seed: int = 0) -> dict[str, float]:
    """Mean loss per modality over every held-out frame, masks drawn with a fixed seed."""
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for batch in dataset.iter_batches(128, ["rgb", "saliency"]):
            raw = {k: torch.from_numpy(v) for k, v in batch.items()}
            out = model(prepare_inputs(raw, model.config.modalities))
            n = len(batch["rgb"])
            for m, loss in out.losses.items():
                sums[m] = sums.get(m, 0.0) + float(loss) * n
            count += n
    model.train()
    return {m: s / count for m, s in sums.items()}


def reconstruction(work: Path, budget_steps: int, budget_batch: int) -> list[dict]:
    rows = []
    for spec in DATASETS:
        train, held_out = (prepare_dataset(work, spec, s) for s in ("train", "eval"))
        out = work / f"run_{spec.replace(':', '_')}_{budget_steps}x{budget_batch}"
        shutil.rmtree(out, ignore_errors=True)  # a run left from before would train nothing
        tick = time.perf_counter()
        summary = pretrain_multimae(
            train, out, modalities=("rgb", "saliency"), steps=budget_steps,
            batch_size=budget_batch, seed=0, device="cpu", resume=False, progress=False,
            checkpoint_every=budget_steps,
        )  # fmt: skip
        seconds = time.perf_counter() - tick
        torch.manual_seed(0)
        initial = multimae_visarl(("rgb", "saliency"))
        trained = MultiMAE.from_pretrained(summary.checkpoint)
        rows.append(
            {
                "dataset": spec,
                "train_frames": train.num_frames,
                "held_out_frames": held_out.num_frames,
                "steps": budget_steps,
                "batch": budget_batch,
                "train_loss_last_steps": summary.losses,
                "held_out_initial": held_out_losses(initial, held_out),
                "held_out_after_budget": held_out_losses(trained, held_out),
                "seconds": seconds,
                "reconstruction_png": str(summary.reconstruction_png),
            }
        )
        print(f"{spec}: {rows[-1]['held_out_after_budget']}", flush=True)
    return rows


# ---------------------------------------------------------------------- report
def markdown(result: dict) -> str:
    m, peak = result["machine"], result["peak"]
    lines = [
        "# MultiMAE: pretraining speed, feature extraction, reconstruction loss",
        "",
        f"- date: {result['date']}",
        f"- command: `{result['command']}`",
        f"- machine: {m['cpu']}, {m['cores']} cores at {m['clock_mhz']} MHz (nominal), "
        f"{m['cpu_capability']}, no GPU; Python {m['python']}; torch threads {m['torch_threads']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        f"- load average (1, 5, 15 min) at start {result['load_start']}, at end "
        f"{result['load_end']}: the 2 cores were shared with other jobs, so timings are "
        "lower bounds of what an idle machine gives",
        "- model: ViSaRL size (encoder depth 4, width 256, 4 heads; decoders width 256, "
        "3 layers, 8 heads), 64x64 frames, patch 8, RGB + saliency, 75% of 128 tokens masked "
        f"(32 encoded + 1 global); {result['parameters'] / 1e6:.2f} M parameters",
        "",
        "## CPU peak",
        "",
        f"- theoretical: {peak['theoretical']:.1f} GFLOP/s = {peak['cores']} cores x 16 fp32 "
        f"lanes (AVX-512) x 2 (FMA) x 2 FMA units x {m['clock_mhz'] / 1000:.2f} GHz "
        "(2 AVX-512 FMA units per core assumed, as on Xeon Scalable; turbo not counted)",
        "- practical (best 2048x2048 float32 matmul): "
        + ", ".join(f"{v:.1f} GFLOP/s with {k} thread(s)" for k, v in peak["practical"].items()),
        "",
        "## Pretraining throughput (forward + backward + AdamW, synthetic batch)",
        "",
        "| threads | batch | s/step (median) | images/s | GFLOP/step (counted) | GFLOP/step "
        "(analytic) | achieved GFLOP/s | of practical peak | of theoretical peak |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["pretraining"]:
        lines.append(
            f"| {r['threads']} | {r['batch']} | {r['step_seconds_median']:.2f} | "
            f"{r['images_per_second']:.1f} | {r['flops_per_step_counted'] / 1e9:.0f} | "
            f"{r['flops_per_step_analytic'] / 1e9:.0f} | {r['achieved_gflops']:.1f} | "
            f"{100 * r['share_of_practical_peak']:.0f}% | "
            f"{100 * r['share_of_theoretical_peak']:.0f}% |"
        )
    lines += [
        "",
        "Counted FLOPs: torch.utils.flop_counter over one forward + backward; on CPU it counts "
        "the matmuls and convolutions but not scaled_dot_product_attention (about 3% of the "
        "work). Analytic: 3 x the forward's multiply-adds x 2, attention included; achieved "
        "GFLOP/s use it. About 80% of the work is in the two decoders (64 query tokens each, "
        "cross-attention + MLP + 3 blocks), 20% in the encoder (33 tokens).",
        "",
        "## Frozen-encoder features (no masking, mean of patch tokens)",
        "",
        "| mode | threads | batch | ms per frame | frames/s | GFLOP per frame | achieved GFLOP/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["features"]:
        lines.append(
            f"| {r['mode']} | {r['threads']} | {r['batch']} | {r['ms_per_frame']:.2f} | "
            f"{r['frames_per_second']:.0f} | {r['gflop_per_frame']:.2f} | "
            f"{r['achieved_gflops']:.1f} |"
        )
    lines += [
        "",
        "Saliency maps given (dataset field); the learned predictor's own cost is not included.",
        "",
        "## Reconstruction loss after a fixed budget",
        "",
        "Oracle saliency: maps from each frame's simulator salient points "
        "(`saliency.maps.clicks_to_map` on the in-image points), written as the `saliency` "
        "field, so the figure measures MultiMAE alone, not a predictor's errors. Losses on "
        "masked patches only: RGB MSE on ImageNet-normalised pixels, saliency L1 on [0, 1] "
        "maps; held-out episodes (other seeds), masks drawn with a fixed seed. Torch threads: "
        f"{result['budget_threads']}.",
        "",
        "| dataset | train / held-out frames | budget | time | held-out RGB MSE: initial -> "
        "after | held-out saliency L1: initial -> after | train loss (last steps) |",
        "|---|---:|---|---:|---|---|---|",
    ]
    for r in result["reconstruction"]:
        a, b, t = r["held_out_initial"], r["held_out_after_budget"], r["train_loss_last_steps"]
        lines.append(
            f"| {r['dataset']} | {r['train_frames']} / {r['held_out_frames']} | "
            f"{r['steps']} steps x {r['batch']} | {r['seconds'] / 60:.1f} min | "
            f"{a['rgb']:.3f} -> {b['rgb']:.3f} | {a['saliency']:.3f} -> {b['saliency']:.3f} | "
            f"rgb {t['rgb']:.3f}, saliency {t['saliency']:.3f} |"
        )
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--work", default="/tmp/multimae_bench")
    parser.add_argument("--timed-steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--budget-steps", type=int, default=100)
    parser.add_argument("--budget-batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the budget runs")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    info = machine()
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python " + " ".join(sys.argv),
        "machine": info,
        "load_start": load_average(),
        "parameters": sum(p.numel() for p in multimae_visarl().parameters()),
    }
    practical = {str(t): matmul_gflops(threads=t) for t in sorted({1, torch.get_num_threads()})}
    result["peak"] = {
        "cores": info["cores"],
        "theoretical": theoretical_peak_gflops(info),
        "practical": practical,
    }
    print(f"peak: {result['peak']}", flush=True)
    result["pretraining"] = pretraining_throughput(args.batch, args.timed_steps, result["peak"])
    result["features"] = [
        row for t in sorted({1, torch.get_num_threads()}) for row in feature_extraction(t)
    ]
    # The fixed-budget runs use --threads (1 by default: on the shared 2-core machine one
    # thread was faster than two; see the pretraining table).
    torch.set_num_threads(args.threads)
    result["budget_threads"] = args.threads
    result["reconstruction"] = reconstruction(work, args.budget_steps, args.budget_batch)
    result["load_end"] = load_average()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "multimae.json", result)
    atomic_write_text(out / "multimae.md", markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
