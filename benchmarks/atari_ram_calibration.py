"""Re-fit the RAM -> pixel maps of saliency_rl.envs.atari_ram against rendered sprites.

For each game, a random policy (actions held 4 steps) plays ``--steps`` steps; after each,
the RAM and the raw RGB screen are kept. Each sprite is found by its colour (the player;
MsPacman's ghosts, one colour each) and its centroid regressed on the RAM bytes by least
squares, ``pixel = slope * ram + offset`` per axis. Printed: the fitted constants and the
median and 90th-percentile residuals (raw pixels), to compare with the constants in
atari_ram.py (fitted this way with --steps 3000 --seed 0).

Usage:
    python benchmarks/atari_ram_calibration.py [--steps 3000] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np

from saliency_rl.envs import make_env

# game -> [(object, colours, (first row, last row), RAM x, RAM y)]
SPRITES = {
    "MsPacman": [
        ("player", [(210, 164, 74)], (0, 172), 10, 16),
        ("sue", [(180, 122, 48)], (0, 172), 6, 12),
        ("inky", [(84, 184, 153)], (0, 172), 7, 13),
        ("pinky", [(198, 89, 179)], (0, 172), 8, 14),
        ("blinky", [(200, 72, 72)], (0, 172), 9, 15),
    ],
    "Frostbite": [
        ("player", [(162, 98, 33), (162, 162, 42), (198, 108, 58)], (44, 188), 102, 100),
    ],
    "Berzerk": [("player", [(240, 170, 103)], (0, 183), 19, 11)],
}


def gather(game: str, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    env = make_env(f"atari:{game}", frame_stack=1, seed=seed)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    rams, frames, action = [], [], 0
    for step in range(steps):
        if step % 4 == 0:
            action = int(rng.integers(env.action_space.n))
        _, _, terminated, truncated, _ = env.step(action)
        rams.append(env.unwrapped.ale.getRAM().copy())
        frames.append(env.render().copy())
        if terminated or truncated:
            env.reset()
    return np.array(rams), np.array(frames)


def fit(values: np.ndarray, pixels: np.ndarray) -> tuple[float, float, float, float]:
    design = np.stack([values.astype(float), np.ones(len(values))], 1)
    (slope, offset), *_ = np.linalg.lstsq(design, pixels, rcond=None)
    residual = np.abs(design @ [slope, offset] - pixels)
    return slope, offset, float(np.median(residual)), float(np.percentile(residual, 90))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print("| game | object | frames | x = a r + b | med / p90 | y = a r + b | med / p90 |")
    print("|---|---|---|---|---|---|---|")
    for game, sprites in SPRITES.items():
        ram, frames = gather(game, args.steps, args.seed)
        rows, cols = np.indices(frames.shape[1:3])
        for name, colours, (top, bottom), ram_x, ram_y in sprites:
            mask = np.zeros(frames.shape[:3], bool)
            for colour in colours:
                mask |= (frames == colour).all(-1)
            mask[:, :top] = mask[:, bottom:] = False
            count = mask.sum((1, 2))
            seen = (count > 5) & (count < 300)
            cx = (mask * cols).sum((1, 2))[seen] / count[seen]
            cy = (mask * rows).sum((1, 2))[seen] / count[seen]
            ax, bx, mx, px = fit(ram[seen, ram_x], cx)
            ay, by, my, py = fit(ram[seen, ram_y], cy)
            print(
                f"| {game} | {name} | {seen.sum()} | {ax:.3f} r {bx:+.2f} | {mx:.2f} / {px:.2f} "
                f"| {ay:.3f} r {by:+.2f} | {my:.2f} / {py:.2f} |"
            )


if __name__ == "__main__":
    main()
