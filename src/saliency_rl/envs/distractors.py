"""Visual distractors for MuJoCo pixel environments: ``make_env(spec, distractor="video_hard")``.

These are OUR OWN distractor sets, modelled on the DMControl Generalization Benchmark
(DMC-GB, Hansen & Wang 2021) but not equal to it: the colours are drawn afresh around the
defaults, and the video modes show procedurally generated moving backgrounds (smooth colour
noise and drifting disks made with numpy), not DMC-GB's real video clips. Returns measured
with them are therefore NOT comparable with published DMC-GB numbers.

Modes:

- ``color_easy`` / ``color_hard``: at every reset the colours of the sky, the floor and
  the agent's body (DMC), or of the sky, table, floor and walls (Meta-World), are drawn
  around their defaults with a standard deviation of 0.1 / 0.2 per RGB channel, clipped to
  [0, 1] (DMC-GB's color_easy / color_hard draw around the defaults in the same way).
  Textured surfaces (the skybox gradient, the floor's checker, Meta-World's wood and metal)
  get two colours drawn, one for each end of their colour range, like the two colours
  (``rgb1``, ``rgb2``) of MuJoCo's built-in textures; shapes and lighting are unchanged.
- ``video_easy`` / ``video_hard``: a moving background replaces, pixel by pixel, what
  MuJoCo's segmentation render says is sky (DMC; Meta-World: sky, floor and walls) in
  ``video_easy``, and also the floor (DMC; Meta-World: the table) in ``video_hard``, whose
  backgrounds are also busier and faster. A new background sequence is drawn per episode.

- ``objects`` (metaworld only): copies of the task's own object placed on the table at every
  reset, visual only (``saliency_rl.envs.distractor_objects``).

``MODE:PATH`` selects DMC-GB's own data instead (real clips, its colour lists): see
``saliency_rl.envs.dmcgb``. Numbers measured with them sit beside published DMC-GB tables.

Every draw comes from the seed passed to ``reset`` (or, for ``reset()`` without a seed, from
a sequence seeded by ``make_env``'s ``seed``), so every method evaluated with the same seeds
sees the same colours and backgrounds. The distractor changes every frame the env returns
(``obs["rgb"]``, all stacked frames, and ``render()``), never the physics, the proprio
state or ``info["salient_points"]``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from saliency_rl.envs.distractor_objects import DistractorObjects
from saliency_rl.envs.dmcgb import ColorEntries, VideoClips, color_entries
from saliency_rl.envs.spec import (  # the string helpers live there: no MuJoCo import
    DISTRACTOR_MODES,
    OBJECTS_MODE,
    check_distractor,
    distractor_name,
    distractor_set,
    parse_distractor,
)
from saliency_rl.errors import EnvSpecError

__all__ = [
    "COLOR_STD",
    "DISTRACTOR_MODES",
    "BackgroundMask",
    "DistractorWrapper",
    "MovingBackground",
    "SceneParts",
    "check_distractor",
    "distractor_name",
    "distractor_set",
    "scene_parts",
]


COLOR_STD = {"color_easy": 0.1, "color_hard": 0.2}
"""Standard deviation of the colour draws, per RGB channel in [0, 1] (as DMC-GB's)."""

_GEOM = int(mujoco.mjtObj.mjOBJ_GEOM)  # an int: numpy compares a pybind enum element by element
_SEED_SALT = 0x5A11E7  # keeps distractor draws independent of the task's draws from the same seed


# ---------------------------------------------------------------------- which parts change
@dataclass(frozen=True)
class SceneParts:
    """The parts of a scene that the distractors change.

    Geom ids index ``model.geom_*``; segmentation pixels of id -1 (nothing hit) are sky.
    """

    colored_geoms: tuple[int, ...]
    """Geoms whose colour (material, texture or rgba) the color modes draw anew."""
    easy_geoms: tuple[int, ...]
    """Geoms the video modes replace, besides the sky (DMC: none; Meta-World: floor, walls)."""
    hard_geoms: tuple[int, ...]
    """Geoms only ``video_hard`` replaces (DMC: the floor; Meta-World: the table)."""


def _world_planes(model: mujoco.MjModel) -> list[int]:
    return [
        g
        for g in range(model.ngeom)
        if model.geom_bodyid[g] == 0 and model.geom_type[g] == mujoco.mjtGeom.mjGEOM_PLANE
    ]


def _body_geoms(model: mujoco.MjModel, body_name: str) -> list[int]:
    body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body_name)
    return [] if body < 0 else [int(g) for g in np.flatnonzero(model.geom_bodyid == body)]


def scene_parts(env: gym.Env) -> SceneParts:
    """Floor, sky-side and agent geoms of a DMC or Meta-World env (its ``unwrapped``)."""
    from saliency_rl.envs.dmc import DMCEnv  # the suites import their simulators

    env = env.unwrapped
    model = env_model(env)
    if isinstance(env, DMCEnv):
        floor = _world_planes(model)
        # The agent: every drawn geom on a moving body (DMC-GB randomises the "self" colour).
        agent = [
            g
            for g in range(model.ngeom)
            if model.geom_bodyid[g] != 0 and model.geom_group[g] < 3 and model.geom_rgba[g, 3] > 0
        ]
        return SceneParts(tuple(floor + agent), (), tuple(floor))
    table = _body_geoms(model, "tablelink")
    walls = _body_geoms(model, "RetainingWall")
    floor = _world_planes(model)
    return SceneParts(tuple(table + walls + floor), tuple(floor + walls), tuple(table))


def env_model(env: gym.Env) -> mujoco.MjModel:
    """The ``MjModel`` of a DMC or Meta-World env; EnvSpecError for other suites."""
    env = env.unwrapped
    if hasattr(env, "physics"):
        return env.physics.model.ptr
    if hasattr(env, "model") and isinstance(env.model, mujoco.MjModel):
        return env.model
    raise EnvSpecError(
        f"distractors need a MuJoCo suite (dmc or metaworld), not {type(env).__name__}"
    )


# ---------------------------------------------------------------------- colours
class _TextureColors:
    """One texture's pixels as positions between two end colours, to draw both ends anew.

    A pixel p is written ``lo + t * (hi - lo) + residual``, with ``lo`` and ``hi`` the darkest
    and the brightest colour of the texture; a gradient or checker of two colours has no
    residual, and a photo keeps its grain in it. Done once per distinct colour, so a reset
    remaps a few thousand colours and gathers, instead of doing float work on every texel.
    """

    def __init__(self, model: mujoco.MjModel, texture: int) -> None:
        self.texture = texture
        start = int(model.tex_adr[texture])
        channels = int(model.tex_nchannel[texture])
        size = int(model.tex_width[texture] * model.tex_height[texture])
        self.slice = slice(start, start + size * channels)
        self.channels = channels
        # The default texels, kept as indices into their distinct colours (drawn around).
        texels = model.tex_data[self.slice].reshape(size, channels)
        keys, self.inverse, counts = _distinct_colors(np.ascontiguousarray(texels))
        colors = np.stack([keys >> 16, (keys >> 8) & 255, keys & 255], axis=1) / 255.0
        # The ends are the 2% and 98% luminance quantiles over texels, not the extremes: a
        # few bright marks (DMC's skybox has white dots) must not become an end.
        order = np.argsort(colors.mean(axis=1), kind="stable")
        cumulative = np.cumsum(counts[order]) / counts.sum()
        self.lo = colors[order[np.searchsorted(cumulative, 0.02)]]
        self.hi = colors[order[min(np.searchsorted(cumulative, 0.98), len(order) - 1)]]
        span = self.hi - self.lo
        norm = float(span @ span)
        self.t = (
            np.clip((colors - self.lo) @ span / norm, 0, 1)
            if norm > 1e-12
            else np.zeros(len(colors))
        )
        self.residual = colors - self.lo - self.t[:, None] * span

    def draw(self, model: mujoco.MjModel, rng: np.random.Generator, std: float) -> None:
        """Both end colours drawn around the defaults with ``std`` per channel."""
        lo = np.clip(self.lo + rng.normal(0, std, 3), 0, 1)
        hi = np.clip(self.hi + rng.normal(0, std, 3), 0, 1)
        self.paint(model, lo, hi)

    def paint(self, model: mujoco.MjModel, lo: np.ndarray, hi: np.ndarray) -> None:
        """The texture with its darkest and brightest colours moved to ``lo`` and ``hi``."""
        colors = lo + self.t[:, None] * (hi - lo) + self.residual
        colors = np.round(np.clip(colors, 0, 1) * 255).astype(np.uint8)
        texels = model.tex_data[self.slice].reshape(-1, self.channels)  # a view: written in place
        if self.channels == 3:
            np.take(colors, self.inverse, axis=0, out=texels)
        else:
            texels[:, :3] = colors[self.inverse]


_DISTINCT_CACHE: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _distinct_colors(texels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct RGB colours as packed keys, each texel's index into them, and their counts.

    Cached by content: every env of a suite has the same multi-megabyte skybox, and
    ``np.unique`` over it takes about a second.
    """
    key = (texels.size, zlib.crc32(texels))
    if key not in _DISTINCT_CACHE:
        packed = texels[:, :3].astype(np.int32) @ np.array([65536, 256, 1], np.int32)
        keys, inverse, counts = np.unique(packed, return_inverse=True, return_counts=True)
        if len(_DISTINCT_CACHE) >= 16:
            _DISTINCT_CACHE.pop(next(iter(_DISTINCT_CACHE)))
        _DISTINCT_CACHE[key] = (keys, inverse.astype(np.int32), counts)
    return _DISTINCT_CACHE[key]


class ColorRandomizer:
    """Draws the colours of the color modes into a model, and uploads changed textures.

    Args:
        model: changed in place at each ``draw``.
        geoms: the geoms to recolour (with their materials and textures).
        upload: called with a texture id after its data changed (the renderer's GL copy).
    """

    def __init__(self, model: mujoco.MjModel, geoms: tuple[int, ...], upload: Any) -> None:
        self.model, self.upload = model, upload
        materials = sorted({int(model.geom_matid[g]) for g in geoms if model.geom_matid[g] >= 0})
        textures = {
            int(t) for t in np.flatnonzero(model.tex_type == mujoco.mjtTexture.mjTEXTURE_SKYBOX)
        }
        self.plain_materials = []
        for m in materials:
            texture_ids = [int(t) for t in model.mat_texid[m] if t >= 0]
            textures.update(texture_ids)
            if not texture_ids:
                self.plain_materials.append(m)
        self.plain_geoms = [g for g in geoms if model.geom_matid[g] < 0]
        self.textures = [_TextureColors(model, t) for t in sorted(textures)]
        self.mat_rgba = model.mat_rgba.copy()
        self.geom_rgba = model.geom_rgba.copy()

    def draw(self, rng: np.random.Generator, std: float) -> None:
        """New colours around the defaults (not around the previous draw)."""
        model = self.model
        for m in self.plain_materials:
            model.mat_rgba[m, :3] = np.clip(self.mat_rgba[m, :3] + rng.normal(0, std, 3), 0, 1)
        for g in self.plain_geoms:
            model.geom_rgba[g, :3] = np.clip(self.geom_rgba[g, :3] + rng.normal(0, std, 3), 0, 1)
        for texture in self.textures:
            texture.draw(model, rng, std)
            self.upload(texture.texture)


# ---------------------------------------------------------------------- moving backgrounds
class MovingBackground:
    """A procedurally generated moving background, one frame per environment step.

    Smooth colour noise on a periodic canvas twice the image size, seen through a window
    that drifts across it (wrapping around), with disks of random colours drifting over it.
    ``hard`` makes the noise finer, the motion faster and the disks more numerous.

    Args:
        height, width: frame size in pixels.
        rng: the episode's generator; the same state gives the same sequence.
        hard: ``video_hard``'s busier background.
    """

    def __init__(self, height: int, width: int, rng: np.random.Generator, hard: bool) -> None:
        self.height, self.width = height, width
        canvas_h, canvas_w = 2 * height, 2 * width
        cells = 8 if hard else 4
        grid = rng.uniform(0, 1, (cells, cells, 3))
        self.canvas = (_periodic_upsample(grid, canvas_h, canvas_w) * 255).astype(np.uint8)
        speed = (3.0 if hard else 1.5) * height / 64  # pixels per step, at any image size
        angle = rng.uniform(0, 2 * np.pi)
        self.offset = rng.uniform(0, [canvas_h, canvas_w])
        self.velocity = speed * np.array([np.sin(angle), np.cos(angle)])
        disks = 6 if hard else 3
        self.disk_color = (rng.uniform(0, 1, (disks, 3)) * 255).astype(np.uint8)
        self.disk_radius = rng.uniform(0.08, 0.2, disks) * height
        self.disk_position = rng.uniform(0, [height, width], (disks, 2))
        self.disk_velocity = rng.normal(0, 2 * speed, (disks, 2))
        self._rows = np.arange(height)
        self._cols = np.arange(width)

    def frame(self, t: int) -> np.ndarray:
        """The background at step ``t`` of the episode, uint8 (H, W, 3)."""
        canvas_h, canvas_w = self.canvas.shape[:2]
        y0, x0 = self.offset + t * self.velocity
        rows = (self._rows + int(y0)) % canvas_h
        cols = (self._cols + int(x0)) % canvas_w
        image = self.canvas[rows[:, None], cols[None, :]]  # (H, W, 3) uint8, a copy
        centres = (self.disk_position + t * self.disk_velocity) % [self.height, self.width]
        for (cy, cx), radius, color in zip(centres, self.disk_radius, self.disk_color, strict=True):
            # Painted in order: the last disk wins where they overlap.
            inside = (self._rows[:, None] - cy) ** 2 + (self._cols[None, :] - cx) ** 2 < radius**2
            image[inside] = color
        return image


def _periodic_upsample(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling of a (h, w, 3) grid that wraps around: a seamless canvas."""
    gh, gw = grid.shape[:2]
    y = np.arange(height) * gh / height
    x = np.arange(width) * gw / width
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    fy, fx = (y - y0)[:, None, None], (x - x0)[None, :, None]
    # Smoothstep weights: no visible creases at the cell borders.
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
    y1, x1 = (y0 + 1) % gh, (x0 + 1) % gw
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x1] * fx
    bottom = grid[y1][:, x0] * (1 - fx) + grid[y1][:, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


# ---------------------------------------------------------------------- what is background
class BackgroundMask:
    """The pixels of the current state that are background, from the segmentation render.

    Background is the sky (nothing hit) and the given geoms. Called once per frame; the
    geom lookup table is built once.

    Args:
        env: a ``DMCEnv`` or ``MetaWorldEnv`` (or a wrapper of one).
        geoms: geom ids that count as background besides the sky.
    """

    def __init__(self, env: gym.Env, geoms: tuple[int, ...]) -> None:
        self.env = env.unwrapped
        self.table = np.zeros(env_model(env).ngeom, bool)
        self.table[list(geoms)] = True

    @classmethod
    def everything(cls, env: gym.Env) -> BackgroundMask:
        """All that ``video_hard`` replaces: sky, floor (and Meta-World's walls and table)."""
        parts = scene_parts(env)
        return cls(env, parts.easy_geoms + parts.hard_geoms)

    def __call__(self) -> np.ndarray:
        """bool (H, W): True where the current frame shows background."""
        segmentation = self.env.render_segmentation()
        ids, types = segmentation[..., 0], segmentation[..., 1]
        geom = (types == _GEOM) & (ids >= 0)
        background = ids < 0
        background[geom] = self.table[ids[geom]]
        return background


# ---------------------------------------------------------------------- the wrapper
class DistractorWrapper(gym.Wrapper):
    """Applies one distractor mode to a single-frame DMC or Meta-World env.

    Wraps the suite's env directly (``make_env`` puts frame stacking outside it, so every
    stacked frame is distracted). See the module docstring for the modes and seeding.

    Args:
        env: a ``DMCEnv`` or ``MetaWorldEnv``.
        mode: one of ``DISTRACTOR_MODES``, or ``MODE:PATH`` for DMC-GB's data
            (``saliency_rl.envs.dmcgb``).
        seed: seeds the draws of resets called without a seed.
    """

    def __init__(self, env: gym.Env, mode: str, seed: int | None = None) -> None:
        from saliency_rl.envs.dmc import DMCEnv

        super().__init__(env)
        if mode is None or mode == "clean":
            raise EnvSpecError("DistractorWrapper needs a distractor mode, not clean")
        self.source = parse_distractor(mode)
        self.mode = self.source.mode
        self._objects: DistractorObjects | None = None
        if self.mode == OBJECTS_MODE:  # first: it swaps in the model with the copies
            self._objects = DistractorObjects(env.unwrapped)
        self.model = env_model(env)
        self.parts = scene_parts(env)
        self._seeds = np.random.default_rng([_SEED_SALT] + ([] if seed is None else [seed]))
        size = env.observation_space["rgb"].shape[1:]
        self._size = (int(size[0]), int(size[1]))
        self._colors: ColorRandomizer | ColorEntries | None = None
        self._clips: VideoClips | None = None
        if self.mode in COLOR_STD:
            upload = env.unwrapped.frame_renderer.upload_texture
            if self.source.path is None:
                self._colors = ColorRandomizer(self.model, self.parts.colored_geoms, upload)
            elif not isinstance(env.unwrapped, DMCEnv):
                raise EnvSpecError(
                    f"DMC-GB's colour sets describe dmc scenes; for {type(env.unwrapped).__name__}"
                    f" use our own {self.mode} (no path)"
                )
            else:
                self._colors = ColorEntries(self.model, color_entries(self.source), upload)
        elif self.mode != OBJECTS_MODE:  # the video modes
            replaced = self.parts.easy_geoms + (
                self.parts.hard_geoms if self.mode == "video_hard" else ()
            )
            self._mask = BackgroundMask(env, replaced)
            if self.source.path is not None:
                self._clips = VideoClips(self.source, *self._size)
            self._background: MovingBackground | np.ndarray | None = None
        self._frame = np.zeros((*self._size, 3), np.uint8)
        self._t = 0
        self.episode_draw: int | None = None
        """Index of the colour entry or clip of this episode (DMC-GB's data), else None."""

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        episode_seed = int(self._seeds.integers(2**63)) if seed is None else seed
        rng = np.random.default_rng([_SEED_SALT, episode_seed])
        if self._objects is not None:
            obs, info = self.env.reset(seed=seed, options=options)
            self.object_positions = self._objects.place(rng)  # clear of where the task put
            self._t = 0  # its object and goal at this reset; then the frame is rendered anew
            return self._distract({**obs, "rgb": self._render_frame()}), info
        if isinstance(self._colors, ColorRandomizer):
            self._colors.draw(rng, COLOR_STD[self.mode])  # before the reset renders
        elif isinstance(self._colors, ColorEntries):
            self.episode_draw = self._colors.draw(rng)
        elif self._clips is not None:
            self.episode_draw = int(rng.integers(len(self._clips)))
            self._background = self._clips.clip(self.episode_draw)
        else:
            self._background = MovingBackground(*self._size, rng, hard=self.mode == "video_hard")
        self._t = 0
        obs, info = self.env.reset(seed=seed, options=options)
        return self._distract(obs), info

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._t += 1
        return self._distract(obs), reward, terminated, truncated, info

    def render(self) -> np.ndarray:
        """The latest observed frame with the distractor, uint8 (H, W, 3)."""
        return self._frame.copy()

    def background_mask(self) -> np.ndarray:
        """Pixels the video modes replace in the current state: bool (H, W)."""
        return self._mask()

    def background_frame(self) -> np.ndarray:
        """The video background of the current step: uint8 (H, W, 3)."""
        if isinstance(self._background, MovingBackground):
            return self._background.frame(self._t)
        return self._background[self._t % len(self._background)]  # clips wrap around

    def _render_frame(self) -> np.ndarray:
        return np.ascontiguousarray(self.env.unwrapped.render().transpose(2, 0, 1))

    def _distract(self, obs: dict) -> dict:
        rgb = obs["rgb"]
        if self._colors is None and self._objects is None:
            mask = self.background_mask()
            rgb = rgb.copy()
            rgb[:, mask] = self.background_frame()[mask].T
        self._frame = rgb.transpose(1, 2, 0)
        return {**obs, "rgb": rgb}
