"""RAM -> pixel maps checked against sprites found by colour in the rendered frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from saliency_rl.envs import make_env
from saliency_rl.envs.atari_ram import RAM_GAMES, object_positions, raw_to_frame
from saliency_rl.errors import EnvSpecError

# The player's colours in the raw RGB frame, and the rows of the screen it can be in (the
# score and lives rows below or above hold the same colours).
PLAYER = {
    "MsPacman": ([(210, 164, 74)], (0, 172)),
    "Frostbite": ([(162, 98, 33), (162, 162, 42), (198, 108, 58)], (44, 188)),
    "Berzerk": ([(240, 170, 103)], (0, 183)),
}
GHOSTS = {  # MsPacman: each ghost has its own colour while not frightened
    "sue": (180, 122, 48),
    "inky": (84, 184, 153),
    "pinky": (198, 89, 179),
    "blinky": (200, 72, 72),
}


def _states(game: str, steps: int, seed: int = 7):
    """(RAM truth, raw RGB frame) after each step of a random policy, actions held 4 steps."""
    env = make_env(f"atari:{game}", frame_stack=1, seed=seed)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    action = 0
    for step in range(steps):
        if step % 4 == 0:
            action = int(rng.integers(env.action_space.n))
        _, _, terminated, truncated, _ = env.step(action)
        yield object_positions(env, game), env.render()
        if terminated or truncated:
            env.reset()
    env.close()


def _mask(frame: np.ndarray, colours, rows: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(frame.shape[:2], bool)
    for colour in colours:
        mask |= (frame == colour).all(-1)
    mask[: rows[0]] = mask[rows[1] :] = False
    return mask


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


@pytest.mark.slow
@pytest.mark.parametrize("game", RAM_GAMES)
def test_player_position_matches_the_sprite(game: str) -> None:
    colours, rows = PLAYER[game]
    raw_errors, small_errors = [], []
    for truth, frame in _states(game, 400):
        mask = _mask(frame, colours, rows)
        if not 5 < mask.sum() < 300:  # off screen, dying, or merged with something
            continue
        player = truth.raw[truth.names.index("player")]
        raw_errors.append(np.linalg.norm(player - _centroid(mask)))
        # The 84x84 frame: the sprite's share of each pixel after the env's INTER_AREA resize.
        small = cv2.resize(mask.astype(np.float32), (84, 84), interpolation=cv2.INTER_AREA)
        ys, xs = np.indices(small.shape)
        centre = np.array([(small * xs).sum(), (small * ys).sum()]) / small.sum()
        small_errors.append(np.linalg.norm(truth.pixels(84)[truth.names.index("player")] - centre))
    assert len(raw_errors) >= 80, f"the player was seen in only {len(raw_errors)} frames"
    raw_errors, small_errors = np.array(raw_errors), np.array(small_errors)
    # Within a few pixels: the sprite animates about its RAM position (Frostbite's jumps most).
    assert np.median(raw_errors) < 2.0, np.median(raw_errors)
    assert np.percentile(raw_errors, 90) < 6.0, np.percentile(raw_errors, 90)
    assert np.median(small_errors) < 1.0, np.median(small_errors)
    assert np.percentile(small_errors, 90) < 3.0, np.percentile(small_errors, 90)


@pytest.mark.slow
def test_mspacman_ghosts_match_their_sprites() -> None:
    errors = {name: [] for name in GHOSTS}
    for truth, frame in _states("MsPacman", 400):
        for name, colour in GHOSTS.items():
            mask = _mask(frame, [colour], (0, 172))
            if 10 < mask.sum() < 120:  # ghosts flicker: drawn on every other frame
                ghost = truth.raw[truth.names.index(name)]
                errors[name].append(np.linalg.norm(ghost - _centroid(mask)))
    for name, found in errors.items():
        assert len(found) >= 20, (name, len(found))
        assert np.median(found) < 1.5, (name, np.median(found))


def _components(frame: np.ndarray, background, rows: tuple[int, int], min_size: int):
    keep = np.ones(frame.shape[:2], bool)
    for colour in background:
        keep &= ~(frame == colour).all(-1)
    keep[: rows[0]] = keep[rows[1] :] = False
    _, _, stats, centres = cv2.connectedComponentsWithStats(keep.astype(np.uint8), connectivity=8)
    return centres[1:][stats[1:, 4] >= min_size]


@pytest.mark.slow
def test_berzerk_robots_match_sprites() -> None:
    distances = []
    for truth, frame in _states("Berzerk", 400):
        robots = truth.raw[[n.startswith("robot") for n in truth.names]]
        # Everything but the black floor, the blue walls and the player is a robot or a shot.
        sprites = _components(frame, [(0, 0, 0), (84, 92, 214), (240, 170, 103)], (0, 183), 20)
        for robot in robots:
            if len(sprites):
                distances.append(np.linalg.norm(sprites - robot, axis=1).min())
    distances = np.array(distances)
    assert len(distances) >= 300
    # Robots that were just shot still sit in RAM while they explode: most, not all, match.
    assert (distances < 2.0).mean() > 0.8, (distances < 2.0).mean()


def test_frostbite_floes_match_sprites() -> None:
    distances = []
    for truth, frame in _states("Frostbite", 200):
        floes = truth.raw[[n.startswith("floe") for n in truth.names]]
        keep = (frame == (214, 214, 214)).all(-1) | (frame == (84, 138, 210)).all(-1)
        keep[:78] = keep[190:] = False
        _, _, stats, centres = cv2.connectedComponentsWithStats(keep.astype(np.uint8), 8)
        whole = centres[1:][stats[1:, 4] >= 100]  # floes cut by the screen edge are smaller
        for floe in floes:
            if 16 < floe[0] < 144:  # wholly on screen
                distances.append(np.linalg.norm(whole - floe, axis=1).min())
    distances = np.array(distances)
    assert len(distances) >= 1000
    assert (distances < 2.0).mean() > 0.95, (distances < 2.0).mean()


def test_raw_to_frame_maps_pixel_centres() -> None:
    corners = np.array([[-0.5, -0.5], [159.5, 209.5]])  # the screen's outer edges
    np.testing.assert_allclose(raw_to_frame(corners, 84), [[-0.5, -0.5], [83.5, 83.5]])


def test_object_positions_reads_ram_bytes_and_rejects_other_games() -> None:
    ram = np.zeros(128, np.uint8)
    ram[10], ram[16] = 50, 60
    truth = object_positions(ram, "MsPacman")
    assert truth.names[0] == "player" and len(truth.names) == 5
    np.testing.assert_allclose(truth.raw[0], [41.7, 65.6], atol=1e-4)
    with pytest.raises(EnvSpecError, match="MsPacman, Frostbite, Berzerk"):
        object_positions(ram, "Pong")
    with pytest.raises(EnvSpecError, match="128 RAM bytes"):
        object_positions(np.zeros(5), "MsPacman")
