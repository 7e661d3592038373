"""Batched Atari games for on-policy training: ``make_atari_vector("atari:MsPacman", 16)``.

Every backend returns uint8 observations (N, 4, 84, 84) (4 grey 84x84 frames, oldest first)
and, per step, a :class:`VectorStep`: the training reward (clipped to its sign when asked),
``done`` (the training episode ended: a life lost under episodic life, the game over, or
ALE's 108,000-frame limit), the unclipped ``raw_reward`` and ``game_over`` (the game itself
ended, so a score is complete). A finished environment restarts at once: the observation
returned with ``done`` is the first of the next episode (gymnasium's ``SAME_STEP``
autoreset, as baselines' ``SubprocVecEnv``), which is what n-step returns need.

Backends:

``native`` (default, fastest): ale-py's C++ vector environment (``ale_py.AtariVectorEnv``),
    the emulators stepped by a thread pool (optionally in groups, stepped apart with
    ``send``/``recv``), preprocessing in C++: no-op starts, FIRE at reset,
    frame skip 4 with the max over the last two frames, INTER_AREA resizing to 84x84 grey,
    4 stacked frames. It differs from our adapter (envs/atari.py, baselines' wrappers) in
    details of the episode boundaries, none of which changes what an agent can learn:

    - episodic life: ale-py's own ``episodic_life=True`` restarts the whole game at a life
      loss (an agent would never see the later lives), so we use ``life_loss_info=True``
      instead: a life loss reports ``terminated`` and the game goes on, as baselines'
      ``EpisodicLifeEnv`` and our adapter; but without the extra no-op step and the FIRE
      press that baselines make after a life loss (a game that waits for FIRE after a lost
      life, e.g. Breakout, waits until the agent presses it), and the frame stack is not
      refilled at a life loss;
    - a new game presses FIRE first, then 0 to 29 no-ops (baselines: 1 to 30 no-ops, then
      FIRE and the game's action 2); the first observation's older frames are zeros (the
      official attention code's ``VecPyTorchFrameStack`` zeroes the stack at every done,
      life losses included; baselines' FrameStack copies the first frame);
    - rewards are clipped here, in Python, with ``np.sign`` (ALE's clamp to [-1, 1] of
      integer rewards is the same), so that the unclipped score stays available.

``our``: gymnasium's ``SyncVectorEnv`` over our adapter (``make_env(spec, preset="atari")``),
    one process: slower, but bit-for-bit reproducible and with a snapshot of every emulator
    (:meth:`GymAtariVector.get_state`), so a resumed run continues exactly.
``our-async``: gymnasium's ``AsyncVectorEnv`` over our adapter, one process per game.

Frames are counted by the caller: one step of N environments is N agent steps, 4N frames.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np

from saliency_rl.envs.spec import parse_spec, unknown_task
from saliency_rl.errors import EnvSpecError

VECTOR_BACKENDS = ("native", "our", "our-async")
FRAME_SKIP = 4  # emulator frames per agent step, in every backend
FRAME_STACK = 4
IMAGE_SIZE = 84
MAX_FRAMES = 108_000  # ALE-v5's limit: 30 minutes of play


@dataclass
class VectorStep:
    """One step of N environments."""

    obs: np.ndarray
    """uint8 (N, 4, 84, 84); for a finished environment the first frame stack of the next episode."""
    reward: np.ndarray
    """float32 (N,): the training reward (sign of the points when rewards are clipped)."""
    done: np.ndarray
    """bool (N,): the training episode ended (life loss under episodic life, game over, time limit)."""
    raw_reward: np.ndarray
    """float32 (N,): the game's points this step, unclipped."""
    game_over: np.ndarray
    """bool (N,): the game ended (all lives lost or time limit); its score is complete."""


def atari_game(spec: str) -> str:
    """The CamelCase game of an ``atari:<Game>`` spec; EnvSpecError for another suite or game."""
    from saliency_rl.envs import atari

    parsed = parse_spec(spec)
    if parsed.suite != "atari":
        raise EnvSpecError(
            f"{spec} is not an Atari game: A2C with attention trains on atari:<Game> specs "
            "(e.g. atari:MsPacman, atari:Pong); list them with `saliency-rl envs atari`"
        )
    key = parsed.name.lower().replace("_", "").replace("-", "").replace(" ", "")
    for name in atari.task_names():
        if name.lower() == key:
            return name
    raise unknown_task("atari", parsed.name, atari.task_names())


def _rom_id(game: str) -> str:
    from ale_py import roms

    for rom in roms.get_all_rom_ids():
        if rom.title().replace("_", "") == game:
            return rom
    raise EnvSpecError(f"no ALE ROM for {game}")  # atari_game() vouched for it


class NativeAtariVector:
    """ale-py's C++ vector environment; see the module docstring for its semantics.

    The N games are split into ``groups`` vector envs (each with its own threads), so that
    a trainer can step one group while the network picks the actions of another: call
    :meth:`send` and :meth:`recv` per group (:attr:`groups` gives their env slices), or
    :meth:`step` for all at once. Game i is the same game whatever the grouping.
    """

    backend = "native"

    def __init__(
        self,
        game: str,
        num_envs: int,
        *,
        episodic_life: bool,
        clip_rewards: bool,
        num_threads: int = 0,
        groups: int = 1,
    ) -> None:
        from ale_py.vector_env import AtariVectorEnv

        self.game, self.num_envs, self.clip_rewards = game, num_envs, clip_rewards
        bounds = np.linspace(0, num_envs, min(groups, num_envs) + 1).round().astype(int)
        self.groups = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        threads = num_threads or min(num_envs, os.cpu_count() or 1)
        self._envs = [
            AtariVectorEnv(
                _rom_id(game),
                group.stop - group.start,
                num_threads=max(1, threads // len(self.groups)),
                autoreset_mode="SameStep",
                episodic_life=False,  # would restart the whole game at a life loss
                life_loss_info=episodic_life,  # a life loss ends the episode, the game goes on
                reward_clipping=False,  # clipped in recv(), keeping the raw score
                img_height=IMAGE_SIZE,
                img_width=IMAGE_SIZE,
                grayscale=True,
                stack_num=FRAME_STACK,
                frameskip=FRAME_SKIP,
                maxpool=True,
                noop_max=30,
                use_fire_reset=True,
                repeat_action_probability=0.0,
                max_num_frames_per_episode=MAX_FRAMES,
            )
            for group in self.groups
        ]
        self.num_actions = int(self._envs[0].single_action_space.n)
        self._lives = np.zeros(num_envs, np.int64)

    def reset(self, seed: int) -> np.ndarray:
        """Start every game; environment i is seeded with ``seed + i``. uint8 (N, 4, 84, 84)."""
        observations = []
        for env, group in zip(self._envs, self.groups, strict=True):
            obs, info = env.reset(seed=int(seed) + group.start)
            self._lives[group] = info["lives"]
            observations.append(obs)
        return np.concatenate(observations)

    def send(self, group: int, actions: np.ndarray) -> None:
        """Start stepping group ``group`` (env slice ``groups[group]``) with ``actions``."""
        self._envs[group].send(np.asarray(actions, np.int64))

    def recv(self, group: int) -> VectorStep:
        """Wait for group ``group``'s step; its VectorStep (arrays of the group's size)."""
        obs, reward, terminated, truncated, info = self._envs[group].recv()
        lives = np.asarray(info["lives"], np.int64)
        slot = self.groups[group]
        # A life loss leaves lives > 0 and lower; at a game over the game has already
        # restarted (same-step autoreset), so lives are back up (or 0 in games without lives).
        life_lost = terminated & (lives > 0) & (lives < self._lives[slot])
        self._lives[slot] = lives
        raw = np.asarray(reward, np.float32)
        done = terminated | truncated
        return VectorStep(
            obs=obs,
            reward=np.sign(raw) if self.clip_rewards else raw.copy(),
            done=done,
            raw_reward=raw,
            game_over=done & ~life_lost,
        )

    def step(self, actions: np.ndarray) -> VectorStep:
        """Step all groups together (they run in parallel)."""
        actions = np.asarray(actions, np.int64)
        for index, group in enumerate(self.groups):
            self.send(index, actions[group])
        return _concat([self.recv(index) for index in range(len(self.groups))])

    def get_state(self) -> dict[str, Any] | None:
        """None: ALE's vector interface cannot snapshot its emulators."""
        return None

    def set_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError("the native backend cannot restore emulator states")

    def close(self) -> None:
        for env in self._envs:
            env.close()


def _concat(steps: list[VectorStep]) -> VectorStep:
    if len(steps) == 1:
        return steps[0]
    return VectorStep(
        **{
            name: np.concatenate([getattr(step, name) for step in steps])
            for name in ("obs", "reward", "done", "raw_reward", "game_over")
        }
    )


class GymAtariVector:
    """gymnasium's Sync/AsyncVectorEnv over ``make_env(spec, preset="atari"|"atari-eval")``."""

    def __init__(
        self,
        game: str,
        num_envs: int,
        *,
        episodic_life: bool,
        clip_rewards: bool,
        asynchronous: bool = False,
    ) -> None:
        from saliency_rl.envs import make_env

        self.game, self.num_envs, self.clip_rewards = game, num_envs, clip_rewards
        self.backend = "our-async" if asynchronous else "our"
        make = partial(
            make_env,
            f"atari:{game}",
            image_size=IMAGE_SIZE,
            frame_stack=FRAME_STACK,
            episodic_life=episodic_life,
            clip_rewards=False,  # clipped in step(), keeping the raw score
        )
        fns = [partial(make, seed=i) for i in range(num_envs)]
        mode = gym.vector.AutoresetMode.SAME_STEP
        if asynchronous:
            self._env = gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode)
        else:
            self._env = gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)
        self.num_actions = int(self._env.single_action_space.n)
        self.groups = [slice(0, num_envs)]  # one group: send() and recv() are step()
        self._actions: np.ndarray | None = None

    def reset(self, seed: int) -> np.ndarray:
        """Start every game; environment i is seeded with ``seed + i``. uint8 (N, 4, 84, 84)."""
        obs, _ = self._env.reset(seed=int(seed))
        return obs["rgb"]

    def send(self, group: int, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, np.int64)

    def recv(self, group: int) -> VectorStep:
        actions, self._actions = self._actions, None
        return self.step(actions)

    def step(self, actions: np.ndarray) -> VectorStep:
        obs, reward, terminated, truncated, info = self._env.step(np.asarray(actions, np.int64))
        done = terminated | truncated
        raw = np.asarray(info["raw_reward"], np.float32).copy()
        game_over = np.zeros(self.num_envs, bool)
        if done.any():  # a finished env's step info is in final_info; info is its reset's
            final = info["final_info"]
            raw[done] = np.asarray(final["raw_reward"], np.float32)[done]
            game_over[done] = np.asarray(final["game_over"], bool)[done]
        return VectorStep(
            obs=obs["rgb"],
            reward=np.sign(raw) if self.clip_rewards else raw.copy(),
            done=done,
            raw_reward=raw,
            game_over=game_over,
        )

    def get_state(self) -> dict[str, Any] | None:
        """Every emulator and wrapper state, for an exact resume (``our`` only, else None)."""
        if self.backend != "our":
            return None
        return {"envs": [_env_state(env) for env in self._env.envs]}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`'s snapshot (after :meth:`reset`)."""
        if self.backend != "our":
            raise NotImplementedError(f"the {self.backend} backend cannot restore env states")
        for env, saved in zip(self._env.envs, state["envs"], strict=True):
            _set_env_state(env, saved)

    def close(self) -> None:
        self._env.close()


# The snapshot reads the adapter's (envs/atari.py) and FrameStack's internals; a test
# (tests/algos/test_a2c.py) checks that a restored vector steps exactly like the original.
def _env_state(env: gym.Env) -> dict[str, Any]:
    from saliency_rl.envs.wrappers import FrameStack

    if not isinstance(env, FrameStack):  # make_env's layout changed: update this snapshot
        raise NotImplementedError(f"cannot snapshot {env}: expected FrameStack(AtariPixelEnv)")
    stack, game = env, env.unwrapped
    return {
        "ale": np.frombuffer(game.ale.cloneState(include_rng=True).serialize(), np.uint8).copy(),
        "frames": game._frames.copy(),
        "life_lost": bool(game._life_lost),
        "lives": int(game._lives),
        "steps": int(game._steps),
        "np_random": game.np_random.bit_generator.state,
        "stack": np.stack(list(stack._frames)),
    }


def _set_env_state(env: gym.Env, state: dict[str, Any]) -> None:
    from ale_py import ALEState

    stack, game = env, env.unwrapped
    game.ale.restoreState(ALEState(np.asarray(state["ale"], np.uint8).tobytes()))
    game._frames[...] = np.asarray(state["frames"])
    game._life_lost, game._lives = bool(state["life_lost"]), int(state["lives"])
    game._steps, game._pending_seed = int(state["steps"]), None
    game.np_random.bit_generator.state = state["np_random"]
    stack._frames = deque(list(np.asarray(state["stack"])), maxlen=stack.k)


def make_atari_vector(
    spec: str,
    num_envs: int,
    *,
    backend: str = "native",
    training: bool = True,
    num_threads: int = 0,
    groups: int = 1,
) -> NativeAtariVector | GymAtariVector:
    """N copies of an Atari game with the standard preprocessing; see the module docstring.

    Args:
        spec: ``atari:<Game>``, e.g. ``atari:MsPacman``.
        num_envs: environments stepped together.
        backend: ``native`` (ale-py's C++ vector env), ``our`` or ``our-async``.
        training: episodic life and clipped rewards (preset ``atari``); False: full games,
            raw rewards (preset ``atari-eval``).
        num_threads: threads of the native backend (0: one per core, at most one per env),
            shared by its groups.
        groups: the native backend's envs in this many groups, stepped apart (send / recv);
            the other backends have one group.

    Raises:
        EnvSpecError: not an Atari spec, an unknown game or backend, or num_envs < 1.
    """
    game = atari_game(spec)
    if backend not in VECTOR_BACKENDS:
        raise EnvSpecError(
            f"unknown vector backend {backend!r}; valid backends: {', '.join(VECTOR_BACKENDS)}"
        )
    if not isinstance(num_envs, int) or num_envs < 1:
        raise EnvSpecError(f"num_envs must be an integer >= 1, got {num_envs!r}")
    options = {"episodic_life": training, "clip_rewards": training}
    if backend == "native":
        return NativeAtariVector(game, num_envs, num_threads=num_threads, groups=groups, **options)
    return GymAtariVector(game, num_envs, asynchronous=backend == "our-async", **options)
