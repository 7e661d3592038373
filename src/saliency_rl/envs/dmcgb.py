"""DMC-GB's own distractor data, read from a folder the user names.

The DMControl Generalization Benchmark (DMC-GB, Hansen & Wang 2021) ships its test data:
real video clips (``video_easy``, ``video_hard``) and two lists of 100 colour settings
(``color_easy``, ``color_hard``). A mode string that carries a path selects them instead of
our procedural sets (``saliency_rl.envs.distractors``)::

    --distractor video_hard:/data/dmcgb            # DIR/video_hard/*.mp4
    --distractor video_hard:/data/my_clips         # any folder of clips (DAVIS, ...)
    --distractor color_hard:/data/dmcgb            # DIR/color_hard.json
    --distractor color_hard:/data/dmcgb/color_hard.json

The protocol, as DMC-GB applies it:

- colour modes: at every reset one entry of the list is drawn (seeded) and the scene's sky
  gradient (its bright end), floor checker (both colours) and the agent's ``self``
  material take its ``skybox_rgb``, ``grid_rgb1`` / ``grid_rgb2`` and ``self_rgb``.
  dmc tasks only: the lists describe DMC scenes.
- video modes: a clip is drawn per episode (seeded) and advances one frame per
  environment step, wrapping around; each frame is resized bilinearly to the observation
  and shown where the sky is (``video_easy``) or the sky and the floor (``video_hard``).
  DMC-GB finds those pixels by painting them green and keying on hue; we take them from
  MuJoCo's segmentation render, which selects the same surfaces exactly (a key also
  catches shading seams and green-tinted agent pixels). Works for metaworld too (sky,
  floor, walls; ``video_hard`` also the table), where DMC-GB has no protocol.

Nothing here downloads: a user gets the files from DMC-GB (``src/env/data/``), converts the
colour ``.pt`` lists to JSON (a list of dicts of RGB triples in [0, 1]), and names the folder.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from saliency_rl.envs.spec import DistractorSource
from saliency_rl.errors import EnvSpecError

__all__ = [
    "COLOR_KEYS",
    "VIDEO_SUFFIXES",
    "ColorEntries",
    "VideoClips",
    "color_entries",
    "video_paths",
]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
COLOR_KEYS = ("skybox_rgb", "grid_rgb1", "grid_rgb2", "self_rgb")
"""What one DMC-GB colour entry sets (RGB triples in [0, 1])."""
_CACHED_CLIPS = 4  # decoded clips kept per env: an evaluation cycles through new ones


# ---------------------------------------------------------------------- video clips
def _natural_key(path: Path) -> list:
    """video2 before video10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def video_paths(source: DistractorSource) -> list[Path]:
    """The clips of a video mode: ``PATH/<mode>/`` if that folder exists, else ``PATH/``."""
    folder = source.path
    if folder is None:
        raise EnvSpecError(f"{source.mode} has no path: our procedural set needs no files")
    if not folder.is_dir():
        raise EnvSpecError(
            f"distractor videos folder {folder} does not exist or is not a folder; give a "
            f"folder of clips ({', '.join(VIDEO_SUFFIXES)}) or one holding {source.mode}/"
        )
    if (folder / source.mode).is_dir():
        folder = folder / source.mode
    paths = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()),
        key=_natural_key,
    )
    if not paths:
        raise EnvSpecError(
            f"no video clips ({', '.join(VIDEO_SUFFIXES)}) in {folder}: put the clips of "
            f"{source.mode} there (DMC-GB: src/env/data/{source.mode}/)"
        )
    return paths


_PROBED: dict[tuple[str, int, int], tuple[int, int]] = {}


def _clip_size(path: Path) -> tuple[int, int]:
    """(height, width) of a clip, from its header; EnvSpecError when it is not a video."""
    import imageio_ffmpeg  # the ffmpeg binary comes with the wheel

    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _PROBED:
        try:
            reader = imageio_ffmpeg.read_frames(str(path))
            meta = next(reader)
            reader.close()
            width, height = meta["size"]
        except (OSError, RuntimeError, StopIteration, KeyError, ValueError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else "no frames"
            raise EnvSpecError(f"{path} is not a readable video clip ({reason})") from None
        _PROBED[key] = (int(height), int(width))
    return _PROBED[key]


def _decode(path: Path, height: int, width: int) -> np.ndarray:
    """Every frame of a clip, bilinearly resized to (height, width): uint8 (T, H, W, 3)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        meta = next(reader)
        clip_w, clip_h = meta["size"]
        frames = [np.frombuffer(f, np.uint8).reshape(clip_h, clip_w, 3) for f in reader]
    except (OSError, RuntimeError, StopIteration) as error:
        raise EnvSpecError(f"{path} could not be decoded ({error})") from None
    finally:
        reader.close()
    if not frames:
        raise EnvSpecError(f"{path} holds no video frames")
    out = np.empty((len(frames), height, width, 3), np.uint8)
    for start in range(0, len(frames), 64):  # chunks: full-size float frames are large
        chunk = torch.from_numpy(np.stack(frames[start : start + 64])).permute(0, 3, 1, 2)
        # Bilinear without antialiasing, as OpenCV's INTER_LINEAR that DMC-GB resizes with.
        resized = F.interpolate(chunk.float(), (height, width), mode="bilinear", antialias=False)
        out[start : start + 64] = resized.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    return out


class VideoClips:
    """The clips of a video mode at the observation size, decoded when first drawn.

    Every clip's header is read at construction, so a folder with a file that is not a
    video, or a clip smaller than the frame, fails before an episode starts.
    """

    def __init__(self, source: DistractorSource, height: int, width: int) -> None:
        self.paths = video_paths(source)
        self.height, self.width = height, width
        # Each header read starts an ffmpeg process: read them side by side (100 clips of
        # DMC-GB's video_hard: 10 s one after another, a few seconds so).
        with ThreadPoolExecutor(max_workers=8) as pool:
            sizes = list(pool.map(_clip_size, self.paths))
        for path, (clip_h, clip_w) in zip(self.paths, sizes, strict=True):
            if clip_h < height or clip_w < width:
                raise EnvSpecError(
                    f"clip {path} is {clip_w}x{clip_h}, smaller than the {width}x{height} "
                    "frame: use clips at least as large as the observation"
                )
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self.paths)

    def clip(self, index: int) -> np.ndarray:
        """Clip ``index``: uint8 (T, H, W, 3) at the observation size."""
        if index not in self._cache:
            if len(self._cache) >= _CACHED_CLIPS:
                self._cache.popitem(last=False)
            self._cache[index] = _decode(self.paths[index], self.height, self.width)
        self._cache.move_to_end(index)
        return self._cache[index]


# ---------------------------------------------------------------------- colour sets
def color_entries(source: DistractorSource) -> list[dict[str, np.ndarray]]:
    """The colour settings of a colour mode: ``PATH`` (.json) or ``PATH/<mode>.json``."""
    path = source.path
    if path is None:
        raise EnvSpecError(f"{source.mode} has no path: our procedural set needs no files")
    if path.is_dir():
        path = path / f"{source.mode}.json"
    if not path.is_file():
        raise EnvSpecError(
            f"colour set {path} does not exist; give DMC-GB's {source.mode} list as JSON (a "
            f"list of dicts with {', '.join(COLOR_KEYS)}) or a folder holding {source.mode}.json"
        )
    try:
        entries = json.loads(path.read_text())
        if not isinstance(entries, list) or not entries:
            raise ValueError("not a non-empty list")
        parsed = []
        for entry in entries:
            colors = {key: np.asarray(entry[key], np.float64) for key in COLOR_KEYS}
            if any(c.shape != (3,) or not ((c >= 0) & (c <= 1)).all() for c in colors.values()):
                raise ValueError("colours must be RGB triples in [0, 1]")
            parsed.append(colors)
    except (ValueError, KeyError, TypeError) as error:
        raise EnvSpecError(
            f"colour set {path} is not a list of dicts with {', '.join(COLOR_KEYS)} as RGB "
            f"triples in [0, 1] ({type(error).__name__}: {error})"
        ) from None
    return parsed


class ColorEntries:
    """Paints one DMC-GB colour entry into a DMC model (sky, floor checker, ``self``)."""

    def __init__(self, model, entries: list[dict[str, np.ndarray]], upload) -> None:
        import mujoco

        from saliency_rl.envs.distractors import _TextureColors, _world_planes

        self.model, self.entries, self.upload = model, entries, upload
        skyboxes = np.flatnonzero(model.tex_type == mujoco.mjtTexture.mjTEXTURE_SKYBOX)
        floor_textures = {
            int(t)
            for g in _world_planes(model)
            if model.geom_matid[g] >= 0
            for t in model.mat_texid[model.geom_matid[g]]
            if t >= 0
        }
        self.skybox = [_TextureColors(model, int(t)) for t in skyboxes]
        self.floor = [_TextureColors(model, t) for t in sorted(floor_textures)]
        self.self_material = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_MATERIAL, "self")
        if self.self_material < 0:
            raise EnvSpecError("DMC-GB's colour sets need a dmc scene with a 'self' material")

    def draw(self, rng: np.random.Generator) -> int:
        """Paint a seeded draw of the entries; returns the entry's index."""
        index = int(rng.integers(len(self.entries)))
        entry = self.entries[index]
        for texture in self.skybox:  # DMC-GB sets the gradient's rgb1, its bright end
            texture.paint(self.model, texture.lo, entry["skybox_rgb"])
            self.upload(texture.texture)
        for texture in self.floor:
            texture.paint(self.model, entry["grid_rgb1"], entry["grid_rgb2"])
            self.upload(texture.texture)
        self.model.mat_rgba[self.self_material, :3] = entry["self_rgb"]
        return index
