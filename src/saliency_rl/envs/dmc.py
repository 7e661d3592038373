"""DeepMind Control Suite tasks (``dmc:<domain>-<task>``) as single-frame pixel environments.

Observations are ``{"rgb": uint8 (3, H, W), "proprio": float32 (d,)}``, where ``proprio`` is
the suite's observation dict flattened in sorted key order (as DrQ and RAD flatten it).
Each step applies the action ``action_repeat`` times, sums the rewards and renders once.
``info["salient_points"]`` holds the pixel (x, y) of the bodies a person would click:

- cartpole: the cart and the pole's tip (the far end of the outermost pole).
- walker: the torso and both feet.
- ball_in_cup: the ball and the cup's bottom (the cup's centre is empty space).
- finger: the fingertip and the spinner's tip (the end that carries the ``tip`` site).
- a few more domains in ``SALIENT_GEOMS``; any other domain: the agent's root body (``torso``
  if there is one, else the first child of the world that has a joint), at the centre of
  its largest visible geom.

Points lie on rendered geoms (a geom's centre, or the end of its axis, inside its end cap),
not at body origins, which are often joints or, for the cup, empty space. Only a fallback
body without visible geoms (the dog's, drawn as a skin) gets its origin.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import gymnasium as gym
import mujoco
import numpy as np
from dm_control import suite

from saliency_rl.envs.mujoco_render import MujocoFrameRenderer, camera_id, project_points
from saliency_rl.envs.spec import FrameOptions, unknown_task
from saliency_rl.errors import EnvSpecError

SALIENT_GEOMS: dict[str, tuple[tuple[str, str, float], ...]] = {
    # domain: (point name, geom name (the first that exists of several), where on the geom's
    # axis: 0 its centre, 1 the end farther from the body's origin, where its joint sits)
    "cartpole": (("cart", "cart", 0.0), ("pole_tip", "pole_3 pole_2 pole_1", 1.0)),
    "walker": (
        ("torso", "torso", 0.0),
        ("left_foot", "left_foot", 0.0),
        ("right_foot", "right_foot", 0.0),
    ),
    "ball_in_cup": (("ball", "ball", 0.0), ("cup", "cup_part_2", 0.0)),
    # Both spinner capsules' ends are as far from the hinge; ties go to the geom's +z end.
    "finger": (("fingertip", "fingertip", 0.0), ("spinner_tip", "cap1", 1.0)),
    "reacher": (("finger", "finger", 0.0), ("target", "target", 0.0)),
    "point_mass": (("pointmass", "pointmass", 0.0), ("target", "target", 0.0)),
    "pendulum": (("pole_tip", "mass", 0.0),),
    "acrobot": (("tip", "lower_arm", 1.0),),
    "hopper": (("torso", "torso", 0.0), ("foot", "foot", 0.0)),
}
DEFAULT_CAMERAS: dict[str, int] = {"quadruped": 2}
"""Camera per domain where camera 0 is a poor view (DrQ renders quadruped from camera 2)."""


def task_names() -> list[str]:
    """Every suite task as ``domain-task``, e.g. ``cartpole-swingup``."""
    return [f"{domain}-{task}" for domain, task in suite.ALL_TASKS]


def make(name: str, frames: FrameOptions | None = None, **options: Any) -> gym.Env:
    """Build ``DMCEnv`` for ``domain-task``; dmc takes no ``options``.

    Raises:
        EnvSpecError: an unknown task, camera or render quality, or an option dmc lacks.
    """
    frames = frames or FrameOptions()
    if name not in task_names():
        raise unknown_task("dmc", name, task_names())
    if options:
        raise EnvSpecError(f"dmc takes no option {', '.join(map(repr, options))}")
    domain, task = name.split("-", 1)
    return DMCEnv(domain, task, frames)


class DMCEnv(gym.Env):
    """One dm_control task seen through a fixed camera; see the module docstring.

    Episodes end with ``truncated`` after ``episode_length`` steps: by default the suite's
    time limit (1000 control steps, so ``ceil(1000 / action_repeat)`` steps; None for lqr,
    which has none). ``terminated`` only where the task ends an episode with discount 0.

    Attributes:
        physics: the dm_control ``Physics`` (``physics.model.ptr`` is the ``MjModel``).
        camera: the index of the camera rendered.
        salient_point_names: names of the rows of ``info["salient_points"]`` (N, 2).
        salient_geom_ids: for each salient point the geom ids of its body (only the geom
            itself for a geom of the world body, such as reacher's target).
    """

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        domain: str,
        task: str,
        frames: FrameOptions,
    ) -> None:
        episode_length = frames.episode_length  # the suite's limit when None
        task_kwargs: dict[str, Any] = {"random": frames.seed}
        if episode_length is not None:
            # We count steps ourselves; the suite's limit may be shorter than the one asked for.
            task_kwargs["time_limit"] = float("inf")
        self._env = suite.load(domain, task, task_kwargs=task_kwargs)
        if episode_length is None and np.isfinite(self._env._step_limit):  # in control steps
            episode_length = -(-int(self._env._step_limit) // frames.action_repeat)
        self.physics = self._env.physics
        model, data = self.physics.model.ptr, self.physics.data.ptr
        self.camera = camera_id(
            model, DEFAULT_CAMERAS.get(domain, 0) if frames.camera is None else frames.camera
        )
        self.action_repeat, self.episode_length = frames.action_repeat, episode_length
        self.render_mode = "rgb_array"
        fps = 1 / (self._env.control_timestep() * frames.action_repeat)
        self.metadata = {**self.metadata, "render_fps": fps}  # videos play in real time
        self.image_size = frames.image_size

        spec = self._env.action_spec()
        low = np.broadcast_to(spec.minimum, spec.shape).astype(np.float32)
        high = np.broadcast_to(spec.maximum, spec.shape).astype(np.float32)
        self.action_space = gym.spaces.Box(low, high, dtype=np.float32)
        proprio_size = sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())
        self.observation_space = gym.spaces.Dict(
            {
                "rgb": gym.spaces.Box(0, 255, (3, frames.image_size, frames.image_size), np.uint8),
                "proprio": gym.spaces.Box(-np.inf, np.inf, (proprio_size,), np.float32),
            }
        )
        if frames.seed is not None:
            self.action_space.seed(frames.seed)

        self._points = _salient_points(domain, model)
        self.salient_point_names: tuple[str, ...] = tuple(p.name for p in self._points)
        self.salient_geom_ids: tuple[tuple[int, ...], ...] = tuple(p.geom_ids for p in self._points)

        self._renderer = MujocoFrameRenderer(
            model, data, frames.image_size, frames.image_size, frames.render_quality
        )
        self._frame = np.zeros((frames.image_size, frames.image_size, 3), np.uint8)
        self._steps, self._done = 0, True

    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self._env.task.random.seed(seed)  # initial states come from the task's RandomState
            self.action_space.seed(seed)
        timestep = self._env.reset()
        self._steps, self._done = 0, False
        return self._observation(timestep.observation), {"salient_points": self.salient_points()}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        if self._done:
            # dm_control would silently start a new episode here.
            raise RuntimeError("the episode is over; call reset() before step()")
        action = np.asarray(action, dtype=np.float64).reshape(self.action_space.shape)
        reward = 0.0
        for _ in range(self.action_repeat):  # no rendering in here: rendering is the cost
            timestep = self._env.step(action)
            reward += float(timestep.reward or 0.0)
            if timestep.last():
                break
        self._steps += 1
        terminated = bool(timestep.last() and timestep.discount == 0.0)
        truncated = not terminated and (
            timestep.last()
            or (self.episode_length is not None and self._steps >= self.episode_length)
        )
        self._done = terminated or truncated
        obs = self._observation(timestep.observation)
        return obs, reward, terminated, truncated, {"salient_points": self.salient_points()}

    def salient_points(self) -> np.ndarray:
        """Pixel (x, y) of each salient point in the current state: float32 (N, 2)."""
        model, data = self.physics.model.ptr, self.physics.data.ptr
        world = [
            data.geom_xpos[p.geom] + data.geom_xmat[p.geom].reshape(3, 3) @ p.offset
            if p.geom >= 0
            else data.xpos[p.body]
            for p in self._points
        ]
        size = self.image_size
        return project_points(model, data, self.camera, np.reshape(world, (-1, 3)), size, size)

    def render(self) -> np.ndarray:
        """The latest observed frame, uint8 (H, W, 3)."""
        return self._frame.copy()

    def render_segmentation(self) -> np.ndarray:
        """Object id and ``mujoco.mjtObj`` type per pixel of the current state: int32 (H, W, 2)."""
        return self._renderer.segmentation(self.camera)

    def render_depth(self) -> np.ndarray:
        """Depth in metres of the current state, float32 (H, W), as seen in ``obs["rgb"]``."""
        return self._renderer.depth(self.camera)

    @property
    def camera_fovy(self) -> float:
        """Vertical field of view of the camera in degrees (for normals from depth)."""
        return float(self.physics.model.cam_fovy[self.camera])

    @property
    def frame_renderer(self) -> MujocoFrameRenderer:
        """The renderer of the frames (distractors upload changed textures through it)."""
        return self._renderer

    def close(self) -> None:
        self._renderer.close()
        super().close()

    def _observation(self, observation: dict[str, Any]) -> dict[str, np.ndarray]:
        self._frame = self._renderer.render(self.camera)
        proprio = [np.asarray(observation[k], np.float32).ravel() for k in sorted(observation)]
        return {
            "rgb": np.ascontiguousarray(self._frame.transpose(2, 0, 1)),  # (H, W, 3) -> (3, H, W)
            "proprio": np.concatenate(proprio),
        }


class _SalientPoint(NamedTuple):
    name: str
    body: int
    geom: int
    """-1: the point is the body's origin."""
    offset: np.ndarray
    """(3,) from the geom's centre, in the geom's frame."""
    geom_ids: tuple[int, ...]


def _salient_points(domain: str, model: mujoco.MjModel) -> list[_SalientPoint]:
    """The domain's points of SALIENT_GEOMS, or its root body's (see the module docstring)."""
    if domain in SALIENT_GEOMS:
        named = []
        for name, geoms, end in SALIENT_GEOMS[domain]:
            ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, g) for g in geoms.split()]
            named.append((name, next(g for g in ids if g >= 0), end))
    else:
        body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "torso")
        if body < 0:
            roots = range(1, model.nbody)
            body = next(b for b in roots if model.body_parentid[b] == 0 and model.body_jntnum[b])
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, body)
        own = [int(g) for g in np.flatnonzero(model.geom_bodyid == body)]
        # Groups 3 and up are not drawn by default (collision shapes and the like).
        visible = [g for g in own if model.geom_group[g] < 3 and model.geom_rgba[g, 3] > 0]
        if not visible:
            return [_SalientPoint(name, body, -1, np.zeros(3), tuple(own))]
        named = [(name, max(visible, key=lambda g: model.geom_rbound[g]), 0.0)]
    points = []
    for name, geom, end in named:
        body = int(model.geom_bodyid[geom])
        # On the world body (floor, walls, targets) only the geom itself is the object.
        ids = (
            (geom,)
            if body == 0
            else tuple(int(g) for g in np.flatnonzero(model.geom_bodyid == body))
        )
        points.append(_SalientPoint(name, body, geom, _axis_offset(model, geom, end), ids))
    return points


def _axis_offset(model: mujoco.MjModel, geom: int, end: float) -> np.ndarray:
    """Offset (3,) in the geom's frame from its centre towards the end of its axis.

    ``end`` 0 is the centre, 1 the axis end farther from the body's origin (where the body's
    joint sits); it applies to capsules and cylinders (size[1] is their half-length), whose
    axis ends lie inside the rendered geom.
    """
    capped = (mujoco.mjtGeom.mjGEOM_CAPSULE, mujoco.mjtGeom.mjGEOM_CYLINDER)
    if not end or model.geom_type[geom] not in capped:
        return np.zeros(3)
    rotation = np.zeros(9)
    mujoco.mju_quat2Mat(rotation, model.geom_quat[geom])
    axis = rotation.reshape(3, 3)[:, 2] * model.geom_size[geom, 1]  # the +z end, in the body frame
    centre = model.geom_pos[geom]
    sign = 1.0 if np.linalg.norm(centre + axis) >= np.linalg.norm(centre - axis) - 1e-9 else -1.0
    return np.array([0.0, 0.0, end * sign * model.geom_size[geom, 1]])
