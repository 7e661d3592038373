"""Roll out a behaviour policy into a dataset: ``saliency-rl collect``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from saliency_rl.data.dataset import Dataset, FieldSpec
from saliency_rl.envs import make_env, parse_spec
from saliency_rl.envs.wrappers import frame_channels
from saliency_rl.errors import DatasetError, EnvSpecError

POLICIES = ("random", "expert")


class Policy(Protocol):
    """A behaviour policy: one action per observation."""

    def reset(self, seed: int) -> None: ...

    def act(self, obs: dict, info: dict) -> np.ndarray: ...


class RandomPolicy:
    """Uniform random actions from the action space, seeded per episode."""

    def __init__(self, env: gym.Env) -> None:
        self.space = env.action_space

    def reset(self, seed: int) -> None:
        self.space.seed(seed)

    def act(self, obs: dict, info: dict) -> np.ndarray:
        return self.space.sample()


class ExpertPolicy:
    """The suite's scripted expert (Meta-World), which reads the simulator state."""

    def __init__(self, env: gym.Env) -> None:
        try:
            self._expert_action = env.get_wrapper_attr("expert_action")
        except AttributeError:
            raise EnvSpecError(
                "policy 'expert' needs a scripted expert, which only metaworld tasks have; "
                "use --policy random"
            ) from None

    def reset(self, seed: int) -> None:
        pass

    def act(self, obs: dict, info: dict) -> np.ndarray:
        return self._expert_action()


def make_policy(name: str, env: gym.Env) -> Policy:
    if name == "random":
        return RandomPolicy(env)
    if name == "expert":
        return ExpertPolicy(env)
    raise EnvSpecError(f"unknown policy {name!r}; valid policies: {', '.join(POLICIES)}")


def episode_fields(
    env: gym.Env, suite: str, depth: bool = False, background: bool = False
) -> dict[str, FieldSpec]:
    """What one frame of this environment stores (rgb unstacked: the newest frame only)."""
    space = env.observation_space
    channels = frame_channels(env)
    _, height, width = space["rgb"].shape
    fields = {"rgb": FieldSpec("uint8", (channels, height, width))}
    if "proprio" in space.spaces:
        fields["proprio"] = FieldSpec("float32", tuple(space["proprio"].shape))
    names = _salient_point_names(env)
    fields["salient_points"] = FieldSpec("float32", (len(names), 2))
    if isinstance(env.action_space, gym.spaces.Discrete):
        fields["action"] = FieldSpec("int64", ())
    else:
        fields["action"] = FieldSpec("float32", tuple(env.action_space.shape))
    fields["reward"] = FieldSpec("float32", ())
    fields["terminal"] = FieldSpec("bool", ())
    if suite == "metaworld":
        fields["success"] = FieldSpec("bool", ())
    if suite == "atari":
        fields["raw_reward"] = FieldSpec("float32", ())
    if depth:
        fields["depth"] = FieldSpec("float16", (height, width))  # metres; half is plenty
    if background:
        fields["background"] = FieldSpec("bool", (height, width))
    return fields


def _depth_renderer(env: gym.Env) -> Callable[[], np.ndarray]:
    try:
        return env.get_wrapper_attr("render_depth")
    except AttributeError:
        raise EnvSpecError(
            "depth needs a MuJoCo depth render, which only dmc and metaworld tasks have"
        ) from None


def _background_renderer(env: gym.Env) -> Callable[[], np.ndarray]:
    from saliency_rl.envs.distractors import BackgroundMask

    try:
        return BackgroundMask.everything(env)
    except EnvSpecError:
        raise EnvSpecError(
            "background masks need MuJoCo's segmentation render, which only dmc and metaworld "
            "tasks have: leave out --background"
        ) from None


def _salient_point_names(env: gym.Env) -> tuple[str, ...]:
    try:
        return tuple(env.get_wrapper_attr("salient_point_names"))
    except AttributeError:
        return ()


def collect(
    env_spec: str,
    out: str | Path,
    *,
    episodes: int | None = None,
    frames: int | None = None,
    policy: str = "random",
    seed: int = 0,
    env_options: Mapping[str, Any] | None = None,
    depth: bool = False,
    background: bool | None = None,
    progress: bool = True,
) -> Dataset:
    """Roll out ``policy`` for ``episodes`` episodes or ``frames`` frames into the dataset at ``out``.

    A new dataset is created, or an existing one of the same spec and options is appended
    to (its episodes are kept; new episodes get new seeds). Each episode is written
    atomically when it ends, so an interrupted collection keeps every finished episode, and
    meta.json records the policy and seed of every episode written (see
    ``Dataset.begin_collection``).
    With ``frames``, the last episode is cut when the budget is reached.

    Args:
        env_spec: e.g. ``dmc:cartpole-swingup``.
        out: the dataset directory.
        episodes, frames: the budget; give exactly one.
        policy: ``random`` or ``expert`` (Meta-World's scripted policies).
        seed: base seed; episode i of the dataset is reset with ``seed + i``.
        env_options: make_env keyword arguments (image_size, frame_stack, action_repeat, ...).
        depth: also store MuJoCo's depth render of every frame (field ``depth``, metres,
            float16 (H, W)), for the depth and normals modalities of MultiMAE. Costs a
            second render per step.
        background: also store which pixels are background (field ``background``, bool
            (H, W): sky and floor; Meta-World also walls and table), from MuJoCo's
            segmentation render, so saliency predictors can be trained to ignore what is
            behind the agent (``saliency.augment``). None (default): on for dmc and
            metaworld, and, when appending, as the dataset was collected.
        progress: show a progress bar on stderr.
    """
    if (episodes is None) == (frames is None):
        raise DatasetError("give exactly one budget: a number of episodes or a number of frames")
    budget = episodes if episodes is not None else frames
    if not isinstance(budget, int) or budget < 1:
        raise DatasetError(f"the budget must be a positive integer, got {budget!r}")
    if policy not in POLICIES:
        raise EnvSpecError(f"unknown policy {policy!r}; valid policies: {', '.join(POLICIES)}")
    spec = parse_spec(env_spec)
    options = {k: v for k, v in dict(env_options or {}).items() if v is not None}
    out = Path(out)
    dataset = None
    if (out / "meta.json").exists():
        dataset = _open_for_append(out, str(spec), options)
        options = dict(dataset.env_options)  # options not given again are the dataset's

    if background is None:
        background = (
            "background" in dataset.meta["fields"]
            if dataset is not None
            else spec.suite in ("dmc", "metaworld")
        )
    env = make_env(str(spec), seed=seed, **options)
    try:
        actor = make_policy(policy, env)
        renderers = {}
        if depth:
            renderers["depth"] = _depth_renderer(env)
        if background:
            renderers["background"] = _background_renderer(env)
        if dataset is None:
            fovy = getattr(env.unwrapped, "camera_fovy", None)
            dataset = Dataset.create(
                out,
                env_spec=str(spec),
                env_options=options,
                fields=episode_fields(env, spec.suite, depth, background),
                salient_point_names=_salient_point_names(env),
                camera={"fovy_degrees": fovy} if fovy is not None else None,
            )
        elif depth != ("depth" in dataset.meta["fields"]):
            raise DatasetError(
                f"dataset {out} was collected {'without' if depth else 'with'} depth: "
                f"{'leave out' if not depth else 'add'} --depth to append to it"
            )
        elif background != ("background" in dataset.meta["fields"]):
            raise DatasetError(
                f"dataset {out} was collected {'without' if background else 'with'} background "
                f"masks: {'leave out' if background else 'drop'} --no-background to append to it"
            )
        record = None
        channels = frame_channels(env)
        written = 0
        bar = tqdm(
            total=budget,
            unit="ep" if episodes else "frame",
            disable=not progress,
            desc=f"collect {spec}",
            dynamic_ncols=True,
        )
        with bar:
            while written < budget:
                episode_seed = seed + dataset.num_episodes
                limit = None if episodes else budget - written
                arrays = _rollout(
                    env, actor, episode_seed, channels, dataset.meta["fields"], limit, renderers
                )
                if record is None:
                    # Recorded before the first episode file and extended with each, so a
                    # collect killed at any moment leaves every episode on disk with its policy
                    # and seed in meta.json; one that fails before its first episode, nothing.
                    record = dataset.begin_collection({"policy": policy, "seed": seed})
                dataset.append_episode(arrays, collection=record)
                step = 1 if episodes else len(arrays["rgb"])
                written += step
                bar.update(step)
    finally:
        env.close()
    return dataset


def _open_for_append(out: Path, spec: str, options: dict) -> Dataset:
    dataset = Dataset.open(out)
    if dataset.env_spec != spec:
        raise DatasetError(
            f"dataset {out} holds {dataset.env_spec}, not {spec}: collect into another directory"
        )
    conflicts = {k: v for k, v in options.items() if dataset.env_options.get(k) != v}
    if conflicts:
        had = {k: dataset.env_options.get(k, "default") for k in conflicts}
        raise DatasetError(
            f"dataset {out} was collected with other env options: it has {had}, asked {conflicts}; "
            "leave them out to use the dataset's, or collect into another directory"
        )
    return dataset


def _rollout(
    env: gym.Env,
    actor: Policy,
    seed: int,
    channels: int,
    fields: Mapping[str, Any],
    max_frames: int | None,
    renderers: Mapping[str, Callable[[], np.ndarray]] | None = None,
) -> dict[str, np.ndarray]:
    """One episode as per-frame arrays (see data.dataset for the alignment)."""
    renderers = renderers or {}
    obs, info = env.reset(seed=seed)
    actor.reset(seed)
    rows: dict[str, list] = {name: [] for name in fields}
    terminal = False
    while True:
        _record_frame(rows, obs, info, channels, renderers)
        done = max_frames is not None and len(rows["rgb"]) >= max_frames
        if done:
            break
        action = actor.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        rows["action"].append(action)
        rows["reward"].append(reward)
        if "raw_reward" in rows:
            rows["raw_reward"].append(info.get("raw_reward", reward))
        if terminated or truncated:
            terminal = bool(terminated)
            _record_frame(rows, obs, info, channels, renderers)
            break
    # The last frame takes no action: pad so every field has one row per frame.
    spec = {name: FieldSpec.from_json(s) for name, s in fields.items()}
    count = len(rows["rgb"])
    arrays = {}
    for name, values in rows.items():
        dtype, shape = np.dtype(spec[name].dtype), spec[name].shape
        if name == "terminal":
            column = np.zeros(count, dtype=bool)
            column[-1] = terminal
        else:
            column = np.zeros((count, *shape), dtype=dtype)
            if values:
                column[: len(values)] = np.asarray(values).reshape(len(values), *shape)
        arrays[name] = column
    return arrays


def _record_frame(
    rows: dict[str, list],
    obs: dict,
    info: dict,
    channels: int,
    renderers: Mapping[str, Callable[[], np.ndarray]],
) -> None:
    rows["rgb"].append(obs["rgb"][-channels:])
    if "proprio" in rows:
        rows["proprio"].append(obs["proprio"])
    rows["salient_points"].append(info.get("salient_points", np.zeros((0, 2), np.float32)))
    if "success" in rows:  # a property of the state, so it belongs to the frame
        rows["success"].append(bool(info.get("success", False)))
    for name, render in renderers.items():  # extra renders of the same state (depth, ...)
        rows[name].append(render())
