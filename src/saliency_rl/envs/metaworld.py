"""Meta-World v3 single tasks as pixel environments: ``make_env("metaworld:drawer-open")``.

Each reset draws new object and goal positions from the task's own ranges, seeded by
``seed`` (Meta-World's benchmarks instead fix one of 50 pre-drawn positions per task).
The observation is ``{"rgb": uint8 (3, H, W), "proprio": float32 (4,)}``: the robot's
end-effector xyz and gripper opening only; the full 39-dim state, goal included, is in
``info["state"]`` and drives the scripted expert (``env.unwrapped.expert_action()``).
As in Meta-World, ``terminated`` is always False: success does not end an episode,
``info["success"]`` reports it, and episodes are truncated after ``episode_length`` steps.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from metaworld.env_dict import ALL_V3_ENVIRONMENTS
from metaworld.policies import ENV_POLICY_MAP
from metaworld.policies.policy import Policy
from metaworld.sawyer_xyz_env import SawyerXYZEnv

from saliency_rl.envs.mujoco_render import MujocoFrameRenderer, camera_id, project_points
from saliency_rl.envs.spec import FrameOptions, unknown_task
from saliency_rl.errors import EnvSpecError

__all__ = ["DEFAULT_CAMERA", "MetaWorldEnv", "expert_policy", "make", "task_names"]

DEFAULT_CAMERA = "corner"
"""ViSaRL's Meta-World camera: arm, object and goal in view from the front left."""

_SUFFIX = "-v3"
_NO_OBJECT = ("reach", "reach-wall")  # their puck is a distractor: only the goal matters
_HANDLE_TASKS = ("drawer", "door", "faucet", "handle", "lever", "window")


def task_names() -> list[str]:
    """Every Meta-World v3 single task, without the ``-v3`` suffix (``drawer-open``, ...)."""
    return [name.removesuffix(_SUFFIX) for name in ALL_V3_ENVIRONMENTS]


def _task(name: str) -> str:
    """The task name without ``-v3``; EnvSpecError with close matches if there is none."""
    task = name.removesuffix(_SUFFIX)
    if task not in task_names():
        raise unknown_task("metaworld", name, task_names())
    return task


def expert_policy(name: str) -> Policy:
    """Meta-World's scripted expert for a task: ``policy.get_action(state (39,)) -> (4,)``.

    The state must show the goal (``info["state"]`` does).
    """
    return ENV_POLICY_MAP[_task(name) + _SUFFIX]()


def make(name: str, frames: FrameOptions | None = None, **options: Any) -> MetaWorldEnv:
    """Build one task as a single-frame pixel env (``make_env`` stacks frames).

    ``name`` is a task from ``task_names()``, with or without ``-v3``. ``frames``: an
    ``episode_length`` of None is Meta-World's 500 simulator steps, that is
    ``ceil(500 / action_repeat)`` steps; ``camera`` None is ``DEFAULT_CAMERA``; ``seed``
    seeds the object and goal positions. Meta-World takes no ``options``.
    """
    frames = frames or FrameOptions()
    if options:
        raise EnvSpecError(f"metaworld has no option {', '.join(map(repr, options))}")
    return MetaWorldEnv(
        _task(name),
        dataclasses.replace(
            frames,
            episode_length=frames.episode_length
            or -(-SawyerXYZEnv.max_path_length // frames.action_repeat),
            camera=DEFAULT_CAMERA if frames.camera is None else frames.camera,
        ),
    )


class MetaWorldEnv(gym.Env):
    """One Meta-World task seen through ``MujocoFrameRenderer`` (arguments as in ``make``).

    Attributes:
        salient_point_names: names of the rows of ``info["salient_points"]`` (N, 2):
            ``hand``, the ``object`` (``handle`` for drawers, doors, faucets...; absent for
            reach) and the ``goal``.
        salient_geom_ids: for each salient point, the geom ids of its body; empty for the
            goal, a site (drawn as a small sphere, segmented as ``mjOBJ_SITE``).
        camera: index of the camera the frames come from (for ``project_points``).
        mw_env: the Meta-World env (``model``, ``data``, ``_target_pos``...).
    """

    metadata = {"render_modes": ["rgb_array"]}
    render_mode = "rgb_array"

    def __init__(
        self,
        task: str,
        frames: FrameOptions,
    ) -> None:
        self.task = task
        self.action_repeat, self.episode_length = frames.action_repeat, frames.episode_length
        # No render_mode: Meta-World's own 480x480 renderer is never used, not even in step.
        env = ALL_V3_ENVIRONMENTS[task + _SUFFIX]()
        try:
            self.camera = camera_id(env.model, frames.camera)
            self._renderer = MujocoFrameRenderer(
                env.model, env.data, frames.image_size, frames.image_size, frames.render_quality
            )
        except EnvSpecError:
            env.close()
            raise
        env._set_task_called = True  # we draw positions ourselves instead of set_task
        env._freeze_rand_vec = False  # new object and goal positions at every reset ...
        env.seeded_rand_vec = True  # ... drawn from env.np_random, so a seed repeats them
        env._partially_observable = False  # the goal stays in the state, for the expert
        del env.sawyer_observation_space  # cached with the goal zeroed: computed anew
        env.max_path_length = frames.episode_length * frames.action_repeat  # we truncate, not it
        self.mw_env, self.model, self.data = env, env.model, env.data
        # Meta-World's corner cameras are mounted upside down (their up axis points at the
        # floor): their images are turned by 180 degrees, so that the table is at the bottom.
        self._flip = bool(env.data.cam_xmat[self.camera].reshape(3, 3)[2, 1] < 0)
        self._expert = expert_policy(task)
        seed = frames.seed
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        self._reseed(seed)
        self._reset_simulation()  # a state to find the salient bodies in
        self.salient_point_names, self.salient_geom_ids = self._salient_bodies()
        self._reseed(seed)  # the first reset() is that of reset(seed=seed)
        self.observation_space = gym.spaces.Dict(
            rgb=gym.spaces.Box(0, 255, (3, frames.image_size, frames.image_size), np.uint8),
            proprio=gym.spaces.Box(  # Meta-World clips the hand to this box
                np.append(env._HAND_SPACE.low, -1.0).astype(np.float32),
                np.append(env._HAND_SPACE.high, 1.0).astype(np.float32),
                dtype=np.float32,
            ),
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self._steps, self._needs_reset = 0, True

    # Gymnasium API -------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Start an episode at new object and goal positions (the same ones for a seed)."""
        super().reset(seed=seed)
        if seed is not None:
            self._reseed(seed)
            self.action_space.seed(seed)
        self._reset_simulation()
        self._steps, self._needs_reset = 0, False
        return self._observe({"success": False})

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        """Apply ``action`` (4,) ``action_repeat`` times, summing rewards; render once.

        ``info["success"]`` is True when the task was solved at any of the repeated steps;
        the other entries of Meta-World's info are those of the last one.
        """
        if self._needs_reset:
            raise RuntimeError("call reset() before step(), and again after truncation")
        action = np.asarray(action, dtype=np.float32)
        reward, success, info = 0.0, False, {}
        for _ in range(self.action_repeat):
            self._state, r, _, _, info = self.mw_env.step(action)
            reward += float(r)
            success = success or bool(info["success"])
        self._steps += 1
        truncated = self._needs_reset = self._steps >= self.episode_length
        obs, info = self._observe({**info, "success": success})
        return obs, reward, False, truncated, info

    def render(self) -> np.ndarray:
        """The current frame, uint8 (H, W, 3), upright as in ``obs["rgb"]``."""
        return self._upright(self._renderer.render(self.camera))

    def render_segmentation(self) -> np.ndarray:
        """Object id and type per pixel, int32 (H, W, 2), upright as in ``obs["rgb"]``."""
        return self._upright(self._renderer.segmentation(self.camera))

    def render_depth(self) -> np.ndarray:
        """Depth in metres, float32 (H, W), upright as in ``obs["rgb"]``."""
        return self._upright(self._renderer.depth(self.camera))

    @property
    def camera_fovy(self) -> float:
        """Vertical field of view of the camera in degrees (for normals from depth)."""
        return float(self.model.cam_fovy[self.camera])

    @property
    def frame_renderer(self) -> MujocoFrameRenderer:
        """The renderer of the frames (distractors upload changed textures through it)."""
        return self._renderer

    def swap_model(self, model: mujoco.MjModel) -> None:
        """Use ``model`` from now on: the same scene with bodies added after the existing ones
        (so every existing id is unchanged) and no new joints. The state is carried over."""
        if (model.nq, model.nv, model.nu) != (self.model.nq, self.model.nv, self.model.nu):
            raise EnvSpecError("a swapped-in model must have the same joints and actuators")
        # What Meta-World writes into its model after loading it (the mocap weld, object and
        # goal placements), carried over to the existing rows of the new one.
        for name in _EDITED_MODEL_FIELDS:
            ours, theirs = getattr(model, name), getattr(self.model, name)
            ours[: len(theirs)] = theirs
        data = mujoco.MjData(model)
        data.qpos[:], data.qvel[:] = self.data.qpos, self.data.qvel
        data.mocap_pos[:], data.mocap_quat[:] = self.data.mocap_pos, self.data.mocap_quat
        mujoco.mj_forward(model, data)
        size, quality = self._renderer.height, self._renderer.quality
        self._renderer.close()
        self.mw_env.model, self.mw_env.data = model, data
        self.model, self.data = model, data
        self._renderer = MujocoFrameRenderer(model, data, size, size, quality)

    def expert_action(self) -> np.ndarray:
        """The scripted expert's action in the current state, float32 (4,) in [-1, 1]."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Constant(s) may be too high": the env clips
            action = self._expert.get_action(self._state)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def close(self) -> None:
        self._renderer.close()
        self.mw_env.close()

    # Internals -----------------------------------------------------------------------

    def _reseed(self, seed: int) -> None:
        self.mw_env.seed(seed)  # its np_random draws the object and goal positions

    def _reset_simulation(self) -> None:
        env = self.mw_env
        env.reset()
        # Meta-World's reset moves the object and goal in the model after its last
        # simulation step: its state and site positions still show the previous layout.
        mujoco.mj_forward(self.model, self.data)
        env._prev_obs = env._get_curr_obs_combined_no_goal()  # at a reset previous = current
        self._state = env._get_obs()

    def _upright(self, image: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(image[::-1, ::-1]) if self._flip else image

    def _observe(self, info: dict) -> tuple[dict, dict]:
        obs = {
            "rgb": np.ascontiguousarray(self.render().transpose(2, 0, 1)),
            "proprio": self._state[:4].astype(np.float32),
        }
        info = {**info, "state": self._state.copy(), "salient_points": self._salient_points()}
        return obs, info

    def _salient_points(self) -> np.ndarray:
        """Pixel (x, y) of each salient point in the upright image, float32 (N, 2)."""
        # The gripper's rail, 5 cm above Meta-World's hand position, which lies in the gap
        # between the fingers: at 64x64 the table behind shows there, not the gripper.
        points = [self.data.geom("rail").xpos]
        if self.task not in _NO_OBJECT:
            points.append(self._state[4:7])  # Meta-World's object (or handle) position
        points.append(self.mw_env._target_pos)
        size = self._renderer.height
        pixels = project_points(self.model, self.data, self.camera, np.stack(points), size, size)
        return size - pixels if self._flip else pixels  # turned by 180 degrees like the image

    def _salient_bodies(self) -> tuple[tuple[str, ...], tuple[tuple[int, ...], ...]]:
        model = self.model
        gripper = model.body("right_hand").id  # housing, rail and fingers below it
        hand = tuple(g for g in range(model.ngeom) if _within(model, model.geom_bodyid[g], gripper))
        if self.task in _NO_OBJECT:
            return ("hand", "goal"), (hand, ())
        body = _nearest_object_body(model, self.data, self._state[4:7])
        obj = tuple(g for g in range(model.ngeom) if model.geom_bodyid[g] == body)
        name = "handle" if self.task.startswith(_HANDLE_TASKS) else "object"
        return ("hand", name, "goal"), (hand, obj, ())


_EDITED_MODEL_FIELDS = (
    "body_pos", "body_quat", "site_pos", "site_quat", "geom_rgba", "mat_rgba", "eq_data",
)  # fmt: skip


def _within(model: mujoco.MjModel, body: int, ancestor: int) -> bool:
    """Whether ``body`` is ``ancestor`` or below it in the kinematic tree."""
    while body not in (ancestor, 0):
        body = model.body_parentid[body]
    return body == ancestor


def _nearest_object_body(model: mujoco.MjModel, data: mujoco.MjData, point: np.ndarray) -> int:
    """The body of the visible, movable, non-robot geom whose centre is nearest ``point``.

    Meta-World's state gives the object's (or handle's) position but not its body; this
    finds the body that draws it in every task, without a table of names.
    """
    robot = (model.body("base").id, model.body("mocap").id)
    candidates = [
        g
        for g in range(model.ngeom)
        if model.geom_group[g] < 3  # the groups MuJoCo draws by default
        and model.geom_rgba[g][3] > 0
        and model.body_weldid[model.geom_bodyid[g]] != 0  # moves: not the table or a case
        and model.body_rootid[model.geom_bodyid[g]] not in robot
    ]
    distances = [np.linalg.norm(data.geom_xpos[g] - point) for g in candidates]
    return int(model.geom_bodyid[candidates[int(np.argmin(distances))]])
