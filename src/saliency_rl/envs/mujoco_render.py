"""Offscreen MuJoCo rendering, fast by default, and projection of world points to pixels.

Why our own renderer: the suites render through a context sized for large images,
with shadows and 4x multisampling. For 64x64 observations, sizing the offscreen
buffer to the image and turning shadows, reflections and multisampling off makes
rendering 5-10x faster on a CPU (see benchmarks/results/env_speed.md).
``quality="default"`` keeps the model's own visual settings for faithful images.
"""

from __future__ import annotations

import atexit
import math
import weakref

import mujoco
import numpy as np

from saliency_rl.errors import EnvSpecError

RENDER_QUALITIES = ("fast", "default")

# MuJoCo's EGL backend terminates its display at exit; a renderer freed after that by the
# garbage collector prints EGL errors. Closing live renderers first avoids it.
_live_renderers: weakref.WeakSet = weakref.WeakSet()


def _close_live_renderers() -> None:
    for renderer in list(_live_renderers):
        renderer.close()


class MujocoFrameRenderer:
    """Renders RGB and segmentation images of one (model, data) pair from a fixed camera.

    Args:
        model: the ``mujoco.MjModel``; its offscreen settings are changed in place for ``fast``.
        data: the ``mujoco.MjData`` rendered at each call.
        height, width: image size in pixels.
        quality: ``"fast"`` (no shadows, reflections or multisampling, buffer sized to the
            image) or ``"default"`` (the model's own settings).
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        height: int,
        width: int,
        quality: str = "fast",
    ) -> None:
        if quality not in RENDER_QUALITIES:
            raise EnvSpecError(
                f"render quality {quality!r} is not valid; valid: {', '.join(RENDER_QUALITIES)}"
            )
        self.model, self.data = model, data
        self.height, self.width, self.quality = height, width, quality
        if quality == "fast":
            model.vis.quality.offsamples = 0
            model.vis.global_.offwidth = width
            model.vis.global_.offheight = height
        else:
            model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
            model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        self._renderer = mujoco.Renderer(model, height, width)
        _live_renderers.add(self)
        # Registered anew after every context: atexit runs the last-registered handler first,
        # so ours always runs before an EGL terminate registered since.
        atexit.unregister(_close_live_renderers)
        atexit.register(_close_live_renderers)
        if quality == "fast":
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0

    def render(self, camera: int | str = 0) -> np.ndarray:
        """RGB image, uint8 (H, W, 3), row 0 at the top as MuJoCo's camera sees it."""
        self._renderer.update_scene(self.data, camera=camera)
        return self._renderer.render()

    def segmentation(self, camera: int | str = 0) -> np.ndarray:
        """Object ids and types per pixel, int32 (H, W, 2); id -1 where nothing was hit.

        Channel 0 is the object id, channel 1 its ``mujoco.mjtObj`` type (geoms are mjOBJ_GEOM).
        """
        self._renderer.enable_segmentation_rendering()
        try:
            self._renderer.update_scene(self.data, camera=camera)
            return self._renderer.render().copy()
        finally:
            self._renderer.disable_segmentation_rendering()

    def depth(self, camera: int | str = 0) -> np.ndarray:
        """Distance along the camera axis in metres per pixel, float32 (H, W)."""
        self._renderer.enable_depth_rendering()
        try:
            self._renderer.update_scene(self.data, camera=camera)
            return self._renderer.render().astype(np.float32, copy=True)
        finally:
            self._renderer.disable_depth_rendering()

    def upload_texture(self, texture: int) -> None:
        """Copy ``model.tex_data`` of one texture to the GL context, after it was changed."""
        renderer = self._renderer
        if renderer._gl_context:  # mujoco.Renderer keeps both; render() makes it current too
            renderer._gl_context.make_current()
        mujoco.mjr_uploadTexture(self.model, renderer._mjr_context, texture)

    def close(self) -> None:
        self._renderer.close()


def camera_id(model: mujoco.MjModel, camera: int | str) -> int:
    """The index of a camera given by index or name; EnvSpecError listing the valid ones."""
    names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]
    if isinstance(camera, str) and not camera.lstrip("-").isdigit():
        if camera not in names:
            raise EnvSpecError(
                f"unknown camera {camera!r}; valid cameras: {', '.join(map(str, names))}"
            )
        return names.index(camera)
    index = int(camera)
    if not 0 <= index < model.ncam:
        raise EnvSpecError(
            f"camera index {index} is out of range; valid: 0..{model.ncam - 1} ({', '.join(map(str, names))})"
        )
    return index


def project_points(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    camera: int,
    points: np.ndarray,
    height: int,
    width: int,
) -> np.ndarray:
    """Project world points into the image of a fixed camera.

    Args:
        points: (N, 3) world coordinates.

    Returns:
        (N, 2) float32 pixel coordinates (x to the right, y down, pixel (i, j) covering
        [j, j+1) x [i, i+1)), in the image as ``MujocoFrameRenderer.render`` returns it.
        Points behind the camera get NaN.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    position = data.cam_xpos[camera]
    rotation = data.cam_xmat[camera].reshape(3, 3)  # columns: camera x, y, z axes in world
    local = (points - position) @ rotation  # camera frame: x right, y up, looking along -z
    depth = -local[:, 2]
    focal = 0.5 * height / math.tan(math.radians(model.cam_fovy[camera]) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = width / 2 + focal * local[:, 0] / depth
        y = height / 2 - focal * local[:, 1] / depth
    out = np.stack([x, y], axis=1).astype(np.float32)
    out[depth <= 0] = np.nan
    return out
