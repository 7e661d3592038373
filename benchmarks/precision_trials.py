"""What ``--precision auto`` would choose on this CPU, per trainer: fp32 against bf16 autocast.

Every trainer times one forward and backward of its own networks in both precisions at start
and keeps the faster (saliency_rl.precision). This script runs the same timing
(``time_precisions``: alternating rounds, medians) on each trainer's network at its default
or paper setting, one torch thread, so a user sees before training whether bf16 pays on their
CPU: on CPUs with AVX512-BF16 or AMX oneDNN runs bf16 convolutions natively; elsewhere bf16 is
emulated and much slower. The networks are built directly (random weights, random batches).

    python benchmarks/precision_trials.py [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import torch
from machine_info import measured_line, provenance

from saliency_rl.data.atomic import atomic_write_json, atomic_write_text
from saliency_rl.precision import bf16_supported, time_precisions


def sac_drq() -> Callable[[], torch.Tensor]:
    from saliency_rl.algos.sac import sac_config
    from saliency_rl.algos.sac_inputs import StepInputs
    from saliency_rl.algos.sac_setup import build_agent

    config = sac_config("drq", batch_size=128, target_augs=1, q_augs=1)
    inputs = StepInputs("cnn", "rgb", frames=3, frame_channels=3, image_size=84)
    agent = build_agent(config, inputs, 1, torch.device("cpu"))
    return agent.precision_trial(inputs.fields, 128)


def a2c(attention: str) -> Callable[[], Callable[[], torch.Tensor]]:
    def make() -> Callable[[], torch.Tensor]:
        from saliency_rl.algos.a2c import A2CAgent

        return A2CAgent(9, attention=attention).precision_trial(16 * 5)

    return make


def multimae() -> Callable[[], torch.Tensor]:
    from saliency_rl.models.multimae import MultiMAE, multimae_config, prepare_inputs

    model = MultiMAE(multimae_config("visarl", ("rgb", "saliency"), image_size=(64, 64))).train()
    raw = {"rgb": torch.randint(0, 256, (64, 3, 64, 64), dtype=torch.uint8),
           "saliency": torch.randint(0, 256, (64, 64, 64), dtype=torch.uint8)}  # fmt: skip
    inputs = prepare_inputs(raw, ("rgb", "saliency"))
    return lambda: model(inputs).loss


def unet() -> Callable[[], torch.Tensor]:
    from saliency_rl.saliency.fit import deep_supervision_loss
    from saliency_rl.saliency.predictor import build_model

    model = build_model("unet", "small", (64, 64), 3).train()
    x, y = torch.rand(16, 3, 64, 64), torch.rand(16, 64, 64)
    return lambda: deep_supervision_loss(model(x), y)


def attention_colour() -> Callable[[], torch.Tensor]:
    from saliency_rl.models.attention import SelfSupervisedAttention

    model = SelfSupervisedAttention(3, 64).train()
    a, b = (torch.randint(0, 256, (32, 3, 64, 64), dtype=torch.uint8) for _ in range(2))
    return lambda: model.loss(a, b)[0]


def bc() -> Callable[[], torch.Tensor]:
    from saliency_rl.algos.bc import bc_loss, preset_config
    from saliency_rl.algos.bc_policy import build_net

    config = preset_config("visarl-bc")
    net = build_net(config, 256 + 39, 4).train()
    states = torch.randn(config.batch_size, config.history, 256 + 39)
    targets = torch.randn(config.batch_size, config.history, config.chunk, 4)
    mask = torch.ones(config.batch_size, config.history, config.chunk, dtype=torch.bool)
    return lambda: bc_loss(net, states, targets, mask)


TRIALS = {
    "train sac --preset drq (84 px, 3 frames, batch 128)": sac_drq,
    "train a2c (Atari CNN, 80 observations)": a2c("none"),
    "train a2c --attention joint (+ 16 frame pairs)": a2c("joint"),
    "pretrain (MultiMAE visarl, rgb+saliency, 64 px, batch 64)": multimae,
    "train-saliency (U-Net small, 64 px, batch 16)": unet,
    "pretrain-attention (colour, 64 px, 32 pairs)": attention_colour,
    "train bc (visarl-bc, batch 64 x 10 steps)": bc,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name, make in TRIALS.items():
        torch.manual_seed(0)
        timings = time_precisions(make(), torch.device("cpu"), budget_s=3.0, min_rounds=3)
        fp32, bf16 = (1000 * timings[p] for p in ("fp32", "bf16"))
        rows.append({"trainer": name, "fp32_ms": round(fp32, 1), "bf16_ms": round(bf16, 1),
                     "auto_picks": "bf16" if bf16 < fp32 else "fp32"})  # fmt: skip
        print(rows[-1], flush=True)
    native = bf16_supported(torch.device("cpu"))
    results = {**provenance("python benchmarks/precision_trials.py"), "native_bf16": native,
               "rows": rows}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "precision_trials.json", results)
    lines = [
        "# What `--precision auto` chooses on this CPU",
        "",
        measured_line(results),
        "",
        "One forward and backward of each trainer's own networks (random weights and batches), "
        "fp32 against bf16 autocast, alternating rounds, median milliseconds "
        f"(`saliency_rl.precision.time_precisions`). oneDNN reports native bf16 on this CPU: "
        f"**{'yes' if native else 'no'}**.",
        "",
        "| trainer | fp32 ms | bf16 ms | bf16 / fp32 | auto picks |",
        "|---|---:|---:|---:|---|",
    ]
    for r in rows:
        ratio = r["bf16_ms"] / r["fp32_ms"]
        lines.append(f"| {r['trainer']} | {r['fp32_ms']:.1f} | {r['bf16_ms']:.1f} | "
                     f"{ratio:.2f}x | {r['auto_picks']} |")  # fmt: skip
    lines.append("")
    atomic_write_text(args.out / "precision_trials.md", "\n".join(lines))
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
