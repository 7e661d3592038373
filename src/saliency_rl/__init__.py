"""saliency-rl: visual reinforcement and imitation learning guided by saliency."""

__version__ = "0.1.0"
