"""Shared helpers of the env tests."""

import pytest


@pytest.fixture(scope="session")
def distractor_wrapper():
    """``distractor_wrapper(env)``: the DistractorWrapper inside a ``make_env`` stack."""
    from saliency_rl.envs.distractors import DistractorWrapper

    def find(env):
        while not isinstance(env, DistractorWrapper):
            env = env.env
        return env

    return find
