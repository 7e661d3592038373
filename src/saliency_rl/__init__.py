"""saliency-rl: visual reinforcement and imitation learning guided by saliency."""

import os

# MuJoCo and dm_control choose their OpenGL backend when first imported. EGL renders
# offscreen without a display or a GPU; a MUJOCO_GL the user set (osmesa, glfw) is kept.
# This only takes effect if saliency_rl is imported before mujoco, dm_control or metaworld.
os.environ.setdefault("MUJOCO_GL", "egl")

__version__ = "0.1.0"
