"""Atari games of the Arcade Learning Environment with the standard DQN/A2C preprocessing.

``make("MsPacman", image_size=84, ...)`` returns one frame per step, ``{"rgb": uint8 (1, 84,
84)}`` (3 channels when ``grayscale=False``); ``make_env`` stacks 4 of them. There is no
``"proprio"`` key: the console's RAM is no proprioception. Atari has no simulator bodies to
project either, so ``info["salient_points"]`` is always empty, float32 (0, 2), and
``salient_point_names`` is ``()``: the self-supervised attention module learns its own.

The preprocessing is OpenAI baselines' ``make_atari`` + ``wrap_deepmind`` (Mnih et al. 2015;
Machado et al. 2018), the setting of the A2C papers, written against ``ALEInterface``
directly for speed: no sticky actions by default (``NoFrameskip-v4``), 1 to ``noop_max``
single-frame no-ops at the start of a game, each action held for ``frame_skip`` frames with
the max over the last two (sprites flicker between frames), INTER_AREA resizing, a life loss
ends the training episode while the game goes on at the next reset (baselines'
``EpisodicLifeEnv``; gymnasium's ``AtariPreprocessing(terminal_on_life_loss=True)`` instead
restarts the whole game, so an agent would never see the later lives), FIRE at every reset
for games that wait for it (``FireResetEnv``), and rewards clipped to their sign.

``info`` always holds ``raw_reward`` (unclipped, summed over the step), ``lives``,
``episode_frame_number`` and ``game_over``: True when the game itself ended (all lives lost,
or cut by the time limit), so scores are summed between ``game_over`` flags.
"""

from __future__ import annotations

from typing import Any

import cv2
import gymnasium as gym
import numpy as np
from ale_py import Action, ALEInterface, LoggerMode, roms

from saliency_rl.envs.spec import FrameOptions, unknown_task
from saliency_rl.errors import EnvSpecError

ALEInterface.setLoggerMode(LoggerMode.Error)  # silence the banner printed per emulator

# ROMs with only a multi-player mode: ale-py registers no single-player "ALE/<Game>-v5".
_MULTIPLAYER = {"combat", "joust", "maze_craze", "warlords"}
_ROMS = {r.title().replace("_", ""): r for r in roms.get_all_rom_ids() if r not in _MULTIPLAYER}
_MAX_FRAMES = 108_000  # ALE-v5's limit: 30 minutes of play, 27,000 steps of 4 frames
_NO_POINTS = np.zeros((0, 2), np.float32)
_NO_POINTS.flags.writeable = False  # shared by every step


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


_BY_KEY = {_key(name): name for name in _ROMS}


def task_names() -> list[str]:
    """Every single-player ALE game, CamelCase as in gymnasium's ``ALE/<Game>-v5``."""
    return sorted(_ROMS)


class AtariPixelEnv(gym.Env):
    """One ALE game with the standard preprocessing (see the module docstring).

    Observation: ``{"rgb": uint8 (C, S, S)}``, C = 1 grey or 3 RGB, S = ``image_size``.
    Action: ``Discrete(n)`` over the game's minimal action set (18 with the full set).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}
    salient_point_names: tuple[str, ...] = ()

    def __init__(
        self,
        game: str,
        *,
        image_size: int,
        action_repeat: int,
        episode_length: int | None,
        seed: int | None,
        episodic_life: bool,
        clip_rewards: bool,
        grayscale: bool,
        noop_max: int,
        frame_skip: int,
        sticky_actions: float,
        full_action_space: bool,
    ) -> None:
        self.game, self.image_size, self.action_repeat = game, image_size, action_repeat
        self.episode_length, self.episodic_life = episode_length, episodic_life
        self.clip_rewards, self.noop_max, self.frame_skip = clip_rewards, noop_max, frame_skip
        self.render_mode = "rgb_array"
        self.ale = ALEInterface()
        self.ale.setFloat("repeat_action_probability", sticky_actions)
        self._sticky = sticky_actions > 0
        # Our own step counter replaces ALE's limit when the caller sets one (0: no limit).
        self.ale.setInt("max_num_frames_per_episode", _MAX_FRAMES if episode_length is None else 0)
        self._load(seed)
        ale = self.ale
        self._actions = ale.getLegalActionSet() if full_action_space else ale.getMinimalActionSet()
        self.action_space = gym.spaces.Discrete(len(self._actions))
        channels = 1 if grayscale else 3
        self.observation_space = gym.spaces.Dict(
            {"rgb": gym.spaces.Box(0, 255, (channels, image_size, image_size), np.uint8)}
        )
        height, width = ale.getScreenDims()
        # The last two raw frames of a step (H, W) or (H, W, 3), max-pooled into _pooled.
        self._frames = np.zeros((2, height, width) + (() if grayscale else (3,)), np.uint8)
        self._pooled = np.empty_like(self._frames[0])
        self._grab = ale.getScreenGrayscale if grayscale else ale.getScreenRGB  # no conversion
        # baselines' FireResetEnv test: action 1 is FIRE; it then presses action 2 as well.
        self._fire_reset = len(self._actions) >= 3 and self._actions[1] == Action.FIRE
        self._pending_seed, self._life_lost, self._lives, self._steps = seed, False, 0, 0

    def _load(self, seed: int | None) -> None:
        # ALE reads its seed when the ROM is loaded (0.2 s), and only sticky actions use it.
        ale_seed = np.random.SeedSequence(seed).generate_state(1)[0] & 0x7FFFFFFF
        self.ale.setInt("random_seed", int(ale_seed))
        self.ale.loadROM(roms.get_rom_path(_ROMS[self.game]))

    def get_action_meanings(self) -> list[str]:
        """Names of the actions, e.g. ``["NOOP", "FIRE", "RIGHT", "LEFT"]`` for Breakout."""
        return [action.name for action in self._actions]

    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start a new game, or after a life loss go on with the next life.

        ``seed`` (else the one given to make, on the first reset) seeds ALE and the no-ops.
        """
        # ALE was loaded with make's seed; without sticky actions it draws no random numbers.
        reload = seed is not None and self._sticky
        seed, self._pending_seed = (self._pending_seed if seed is None else seed), None
        super().reset(seed=seed)
        if reload:
            self._load(seed)
        if self._life_lost and seed is None:
            self._skip_step(Action.NOOP)  # as EpisodicLifeEnv: step off the life-loss frame
        else:
            self._new_game()
        if self._fire_reset:
            for action in (Action.FIRE, self._actions[2]):
                self._skip_step(action)
                if self.ale.game_over():
                    self._new_game()
        self._life_lost, self._lives = False, self.ale.lives()
        return self._observation(), self._info(0.0, game_over=False)

    def step(self, action: int) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        """Hold ``action`` for ``action_repeat * frame_skip`` frames; reward summed (clipped)."""
        ale_action, raw = self._actions[action], 0.0
        for _ in range(self.action_repeat):
            raw += self._skip_step(ale_action)
            if self.ale.game_over() or (self.episodic_life and self.ale.lives() < self._lives):
                break
        self._steps += 1
        lives, ended = self.ale.lives(), self.ale.game_over(with_truncation=False)
        truncated = self.ale.game_truncated() or self._steps == self.episode_length
        # baselines' test: some games report 0 lives only once the game is over.
        life_lost = self.episodic_life and 0 < lives < self._lives
        self._life_lost = life_lost and not (ended or truncated)  # else reset starts a new game
        self._lives = lives
        reward = float(np.sign(raw)) if self.clip_rewards else raw
        obs, info = self._observation(), self._info(raw, game_over=ended or truncated)
        return obs, reward, ended or life_lost, truncated, info

    def render(self) -> np.ndarray:
        """The full-size RGB screen, uint8 (210, 160, 3)."""
        return self.ale.getScreenRGB()

    def _new_game(self) -> None:
        self.ale.reset_game()
        noops = int(self.np_random.integers(1, self.noop_max + 1)) if self.noop_max else 0
        for _ in range(noops):  # single frames, as baselines' NoopResetEnv below the frame skip
            self.ale.act(Action.NOOP)
            if self.ale.game_over():
                self.ale.reset_game()
        self._grab(self._frames[1])
        self._frames[0] = self._frames[1]
        self._steps = 0

    def _skip_step(self, action: Action) -> float:
        """Play ``frame_skip`` frames; keep the last two in ``_frames``; the summed reward."""
        reward, skip = 0.0, self.frame_skip
        for i in range(skip):
            reward += self.ale.act(action)
            if i == skip - 2:
                self._grab(self._frames[0])
            if self.ale.game_over():
                break
        self._grab(self._frames[1])
        if i < skip - 2 or skip == 1:  # frame 0 is from an earlier step: pool nothing stale
            self._frames[0] = self._frames[1]
        return reward

    def _observation(self) -> dict[str, np.ndarray]:
        np.maximum(self._frames[0], self._frames[1], out=self._pooled)
        size = (self.image_size, self.image_size)
        small = cv2.resize(self._pooled, size, interpolation=cv2.INTER_AREA)
        rgb = small[None] if small.ndim == 2 else np.ascontiguousarray(small.transpose(2, 0, 1))
        return {"rgb": rgb}

    def _info(self, raw_reward: float, *, game_over: bool) -> dict[str, Any]:
        return {
            "raw_reward": raw_reward,
            "lives": self.ale.lives(),
            "game_over": game_over,
            "episode_frame_number": self.ale.getEpisodeFrameNumber(),
            "salient_points": _NO_POINTS,
        }


def make(
    name: str,
    frames: FrameOptions,
    *,
    episodic_life: bool = True,
    clip_rewards: bool = True,
    grayscale: bool = True,
    noop_max: int = 30,
    frame_skip: int = 4,
    sticky_actions: float = 0.0,
    full_action_space: bool = False,
) -> AtariPixelEnv:
    """Build ``atari:<name>``; ``name`` as in :func:`task_names` (case and ``_`` ignored).

    ``frames.render_quality`` is ignored: the emulator draws one way; ``frames.camera`` must
    be None.
    Turn ``episodic_life`` and ``clip_rewards`` off to evaluate (preset ``atari-eval``).
    ``episode_length`` counts steps since the game started (default: ALE's 108,000 frames).

    Raises:
        EnvSpecError: unknown game, a camera, or an option out of range.
    """
    game = _BY_KEY.get(_key(name))
    if game is None:
        raise unknown_task("atari", name, task_names())
    if frames.camera is not None:
        raise EnvSpecError(
            f"Atari games have no cameras; got camera={frames.camera!r}, leave it unset"
        )
    for option, value, low in (("noop_max", noop_max, 0), ("frame_skip", frame_skip, 1)):
        if not isinstance(value, int) or value < low:
            raise EnvSpecError(f"{option} must be an integer >= {low}, got {value!r}")
    if not 0.0 <= sticky_actions <= 1.0:
        raise EnvSpecError(f"sticky_actions must be in [0, 1], got {sticky_actions!r}")
    return AtariPixelEnv(
        game,
        image_size=frames.image_size,
        action_repeat=frames.action_repeat,
        episode_length=frames.episode_length,
        seed=frames.seed,
        episodic_life=episodic_life,
        clip_rewards=clip_rewards,
        grayscale=grayscale,
        noop_max=noop_max,
        frame_skip=frame_skip,
        sticky_actions=sticky_actions,
        full_action_space=full_action_space,
    )
