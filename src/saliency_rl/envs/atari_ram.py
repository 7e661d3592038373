"""Ground-truth object positions read from the Atari console's RAM, in screen pixels.

For MsPacman, Frostbite and Berzerk, :func:`object_positions` turns the 128 bytes of RAM into
the (x, y) centres of the objects on screen: the player, the enemies and the items, in the
raw 210x160 frame and in the 84x84 preprocessed frame (envs.atari). They are the ground truth
of the keypoint evaluation (models.keypoints, ``saliency-rl keypoints``).

RAM addresses are AtariARI's annotations (Anand et al., "Unsupervised State Representation
Learning in Atari", NeurIPS 2019, ``atariari/benchmark/ram_annotations.py``), checked here.
RAM values are not pixels: every map below is ``pixel = slope * ram + offset``, fitted by least
squares against the centroid of the object's sprite found by colour in the rendered RGB
frame (``AtariPixelEnv.render()``), over 3,000 random-policy steps (seed 0, frame skip 4, an
action held 4 steps) of each game. The residuals of those fits (median, 90th percentile, raw
pixels) are given beside each constant; tests/envs/test_atari_ram.py re-detects the sprites
in fresh random-policy frames and checks the mapped positions against them.

Objects per game (names as in the returned ``names``):

- MsPacman: ``player`` (RAM 10, 16) and the ghosts ``sue``, ``inky``, ``pinky``, ``blinky``
  (RAM 6-9, 12-15), always 5 objects. The fruit (RAM 11, 17) is left out: it never appeared
  in random play, so its map could not be fitted.
- Frostbite: ``player`` (RAM 102, 100), the enemy of each of the 4 water rows
  (RAM 84-87, x only: each row has its own y; 0 means no enemy) and the 12 ice floes, 3 per
  row (RAM 31-34: the row's first floe; the next two are 32 pixels apart, wrapping at the
  screen edge). The bear (RAM 104, later levels) is left out, for the same reason as the fruit.
- Berzerk: ``player`` (RAM 19, 11) and the robots (RAM 65-72 x, 56-63 y; the list of y ends
  at the first 127). Evil Otto (RAM 46, 89) is left out (never fitted).

The 84x84 frame is the whole 210x160 screen resized with INTER_AREA, so a raw pixel centre
(x, y) lands at ((x + 0.5) * 84 / 160 - 0.5, (y + 0.5) * 84 / 210 - 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from saliency_rl.errors import EnvSpecError

RAW_HEIGHT, RAW_WIDTH = 210, 160
RAM_GAMES = ("MsPacman", "Frostbite", "Berzerk")


@dataclass(frozen=True)
class LinearMap:
    """pixel = slope * ram + offset along one axis of the raw 210x160 frame."""

    slope: float
    offset: float

    def __call__(self, value: np.ndarray | int) -> np.ndarray:
        return self.slope * np.asarray(value, np.float64) + self.offset


# ---------------------------------------------------------------------- fitted constants
# MsPacman: one coordinate system for the player and the ghosts. Player fit (3,000 frames,
# colour (210, 164, 74)): x 0.998 r - 8.33, y 0.998 r + 5.63, median residual 0.4 / 0.1 px.
# Each ghost by its own colour (1,200-2,400 frames each): x r - 8.2 to -8.4, y r + 5.9 to 6.2,
# residuals 0.1-0.2 px; we keep slope 1 and the mean offsets.
_MSPACMAN_X = LinearMap(1.0, -8.3)
_MSPACMAN_PLAYER_Y = LinearMap(1.0, 5.6)
_MSPACMAN_GHOST_Y = LinearMap(1.0, 6.0)

# Frostbite. Player (2,196 frames where Bailey's colours (162, 98, 33), (162, 162, 42),
# (198, 108, 58) show below the score): x 0.994 r + 3.8, median 0.3 px, 90 % 0.5 px; y 1.042 r
# + 35.3, median 0.9 px, 90 % 4.9 px (the sprite crouches and jumps about its RAM row).
# Enemies (birds, colour (132, 144, 252)): x r + 3.0; their rows sit 26 px apart.
# Floes (colours (214, 214, 214) and (84, 138, 210), 112-pixel parts): x r + 3.5 + 32 m.
_FROSTBITE_PLAYER = (LinearMap(0.994, 3.8), LinearMap(1.042, 35.3))
_FROSTBITE_ENEMY_X = LinearMap(1.0, 3.0)
_FROSTBITE_ENEMY_ROWS_Y = (162.8, 136.8, 110.8, 84.8)  # RAM 84 (bottom row) .. 87 (top row)
_FROSTBITE_FLOE_X = LinearMap(1.0, 3.5)
_FROSTBITE_FLOE_ROWS_Y = (177.0, 151.0, 125.0, 99.0)  # RAM 31 (bottom row) .. 34 (top row)
_FROSTBITE_FLOE_SPACING = 32.0

# Berzerk. Player (2,621 frames, colour (240, 170, 103)): x 1.033 r + 6.53, y 0.95 r + 18.3,
# median 0.3 / 0.5 px. Robots (4,054 robot-frames, matched to the nearest non-wall, non-player
# sprite): x r + 9.5, y 2.0 r + 10.64, median 0.06 / 0.08 px.
_BERZERK_PLAYER = (LinearMap(1.033, 6.53), LinearMap(0.95, 18.3))
_BERZERK_ROBOT = (LinearMap(1.0, 9.5), LinearMap(2.0, 10.64))
_BERZERK_END = 127  # the robots' y list ends here


@dataclass(frozen=True)
class GroundTruth:
    """Objects on one screen: names and centres (x, y) in pixels."""

    names: tuple[str, ...]
    """One name per object, e.g. ``("player", "sue", ...)``."""
    raw: np.ndarray
    """float32 (n, 2) centres (x, y) in the raw 210x160 frame."""

    def pixels(self, size: int = 84) -> np.ndarray:
        """float32 (n, 2) centres (x, y) in the ``size`` x ``size`` preprocessed frame."""
        return raw_to_frame(self.raw, size)


def raw_to_frame(points: np.ndarray, size: int = 84) -> np.ndarray:
    """Raw 210x160 pixel centres (n, 2) (x, y) -> centres in the resized size x size frame."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    x = (points[:, 0] + 0.5) * size / RAW_WIDTH - 0.5
    y = (points[:, 1] + 0.5) * size / RAW_HEIGHT - 0.5
    return np.stack([x, y], 1).astype(np.float32)


def _mspacman(ram: np.ndarray) -> tuple[list[str], list[tuple[float, float]]]:
    names = ["player", "sue", "inky", "pinky", "blinky"]
    points = [(_MSPACMAN_X(ram[10]), _MSPACMAN_PLAYER_Y(ram[16]))]
    points += [(_MSPACMAN_X(ram[6 + i]), _MSPACMAN_GHOST_Y(ram[12 + i])) for i in range(4)]
    return names, points


def _frostbite(ram: np.ndarray) -> tuple[list[str], list[tuple[float, float]]]:
    names: list[str] = []
    points: list[tuple[float, float]] = []
    names.append("player")
    points.append((_FROSTBITE_PLAYER[0](ram[102]), _FROSTBITE_PLAYER[1](ram[100])))
    for row in range(4):
        if ram[84 + row]:
            names.append(f"enemy_{row}")
            points.append((_FROSTBITE_ENEMY_X(ram[84 + row]), _FROSTBITE_ENEMY_ROWS_Y[row]))
    for row in range(4):
        for m in range(3):
            x = (_FROSTBITE_FLOE_X(ram[31 + row]) + m * _FROSTBITE_FLOE_SPACING) % RAW_WIDTH
            names.append(f"floe_{row}_{m}")
            points.append((x, _FROSTBITE_FLOE_ROWS_Y[row]))
    return names, points


def _berzerk(ram: np.ndarray) -> tuple[list[str], list[tuple[float, float]]]:
    names = ["player"]
    points = [(_BERZERK_PLAYER[0](ram[19]), _BERZERK_PLAYER[1](ram[11]))]
    for i in range(8):
        if ram[56 + i] == _BERZERK_END:
            break
        names.append(f"robot_{i}")
        points.append((_BERZERK_ROBOT[0](ram[65 + i]), _BERZERK_ROBOT[1](ram[56 + i])))
    return names, points


_READERS = {"MsPacman": _mspacman, "Frostbite": _frostbite, "Berzerk": _berzerk}


def has_ram_ground_truth(game: str) -> bool:
    """Whether :func:`object_positions` knows ``game`` (CamelCase, e.g. ``MsPacman``)."""
    return game in _READERS


def object_positions(source: Any, game: str) -> GroundTruth:
    """The objects on screen now, from the console's RAM.

    Args:
        source: an Atari env (``make_env("atari:MsPacman")``, wrappers allowed: its
            ``unwrapped.ale`` is read) or the 128 RAM bytes (uint8 array).
        game: ``MsPacman``, ``Frostbite`` or ``Berzerk``.

    Raises:
        EnvSpecError: another game, or ``source`` is neither an Atari env nor 128 bytes.
    """
    reader = _READERS.get(game)
    if reader is None:
        raise EnvSpecError(
            f"no RAM ground truth for {game!r}; games with object positions: {', '.join(RAM_GAMES)}"
        )
    ram = _ram(source)
    names, points = reader(ram.astype(np.int64))
    raw = np.asarray(points, np.float32).reshape(-1, 2)
    return GroundTruth(tuple(names), raw)


def _ram(source: Any) -> np.ndarray:
    ale = getattr(getattr(source, "unwrapped", source), "ale", None)
    if ale is not None:
        return ale.getRAM()
    ram = np.asarray(source)
    if ram.shape != (128,):
        raise EnvSpecError(
            f"object_positions reads an Atari env or its 128 RAM bytes; got {type(source).__name__}"
            f" with shape {getattr(ram, 'shape', None)}"
        )
    return ram


__all__ = [
    "RAM_GAMES",
    "GroundTruth",
    "LinearMap",
    "has_ram_ground_truth",
    "object_positions",
    "raw_to_frame",
]
