"""Errors raised where a fault is detected; the CLI turns each into one line and an exit code."""


class SaliencyRLError(Exception):
    """Base class: the message says what was wrong and what is valid."""


class EnvSpecError(SaliencyRLError, ValueError):
    """An environment spec string or an environment option is not valid."""


class DatasetError(SaliencyRLError):
    """A dataset directory is missing, damaged, foreign or of another spec."""


class CheckpointError(SaliencyRLError):
    """A checkpoint directory is missing, damaged, or holds another kind of model."""


class DeviceError(SaliencyRLError, ValueError):
    """A device was asked for that this machine does not have (e.g. cuda without a GPU)."""
