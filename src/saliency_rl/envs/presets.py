"""Named environment settings of the papers. A preset fills make_env options the caller left unset.

Keep paper settings here, as data, not as copies of code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from saliency_rl.envs.spec import EnvSpec, suggest
from saliency_rl.errors import EnvSpecError


@dataclass(frozen=True)
class EnvPreset:
    """make_env options of one published setting."""

    description: str
    """Where the numbers come from."""
    suite: str
    """The suite the preset applies to."""
    options: dict = field(default_factory=dict)
    """make_env keyword arguments shared by every task of the suite."""
    action_repeat: dict[str, int] = field(default_factory=dict)
    """Per DMC domain (or task) action repeat, where it differs between tasks."""

    def options_for(self, spec: EnvSpec) -> dict:
        options = dict(self.options)
        domain = spec.name.split("-")[0]
        for key in (spec.name, domain):
            if key in self.action_repeat:
                options["action_repeat"] = self.action_repeat[key]
                break
        return options


PRESETS: dict[str, EnvPreset] = {
    # PlaNet / CURL / RAD / DrQ "100k steps" DMC benchmark: action repeat per domain
    # (Laskin et al. 2020, CURL Table 4; RAD Table 3; DrQ's appendix table of action
    # repeats and its official code, cartpole 8, finger and walker 2, the rest 4);
    # 84x84 frames, 3 stacked (DrQ config.yaml: image_size 84, frame_stack 3).
    "dmc-100k": EnvPreset(
        description="DMC 100k benchmark of PlaNet, CURL, RAD and DrQ (84x84, 3 frames, per-domain action repeat)",
        suite="dmc",
        options={"image_size": 84, "frame_stack": 3, "action_repeat": 4},
        action_repeat={
            "cartpole": 8,
            "finger": 2,
            "walker": 2,
            "ball_in_cup": 4,
            "cheetah": 4,
            "reacher": 4,
        },
    ),
    # ViSaRL (Liang, Thomason, Biyik), DMC experiments: 64x64 frames, same action repeats.
    "visarl-dmc": EnvPreset(
        description="ViSaRL DMC setting (64x64, per-domain action repeat of the 100k benchmark)",
        suite="dmc",
        options={"image_size": 64, "action_repeat": 4},
        action_repeat={"cartpole": 8, "finger": 2, "walker": 2, "ball_in_cup": 4},
    ),
    # ViSaRL Meta-World experiments: 64x64 frames, 500-step episodes.
    "visarl-metaworld": EnvPreset(
        description="ViSaRL Meta-World setting (64x64, episode length 500)",
        suite="metaworld",
        options={"image_size": 64, "episode_length": 500},
    ),
    # Mnih et al. 2015 preprocessing as in OpenAI baselines' wrap_deepmind, used by A2C in
    # Wu, Khetarpal, Precup (AAAI 2021): 84x84 grey, 4 frames, no-op starts, no sticky
    # actions, life loss ends training episodes, rewards clipped.
    "atari": EnvPreset(
        description="Standard Atari preprocessing for training (84x84 grey, 4 frames, episodic life, clipped rewards)",
        suite="atari",
        options={"image_size": 84, "frame_stack": 4, "episodic_life": True, "clip_rewards": True},
    ),
    "atari-eval": EnvPreset(
        description="Atari preprocessing for evaluation (full episodes, unclipped scores)",
        suite="atari",
        options={"image_size": 84, "frame_stack": 4, "episodic_life": False, "clip_rewards": False},
    ),
}


def preset_options(name: str, spec: EnvSpec) -> dict:
    """The options preset ``name`` sets for ``spec``; EnvSpecError if unknown or of another suite."""
    if name not in PRESETS:
        raise EnvSpecError(
            f"unknown env preset {name!r}{suggest(name, PRESETS)}; valid presets: {', '.join(PRESETS)}"
        )
    preset = PRESETS[name]
    if preset.suite != spec.suite:
        valid = [n for n, p in PRESETS.items() if p.suite == spec.suite]
        raise EnvSpecError(
            f"env preset {name!r} is for {preset.suite} tasks, not {spec}; presets for "
            f"{spec.suite}: {', '.join(valid) or 'none'}"
        )
    return preset.options_for(spec)
