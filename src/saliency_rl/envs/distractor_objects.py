"""Distractor objects for Meta-World: copies of the task's own object on the table.

ViSaRL's real-robot Table V puts extra objects on the table that the demonstrations never
showed. Here: ``OBJECT_COUNT`` static copies of the task's object (its geoms, shapes,
materials and colours; reach, which has no object, gets copies of the puck of
``push``-like tasks: a red cylinder) are added to the scene model, and at every reset
placed on the table at seeded positions at least ``CLEARANCE`` from the hand, the object,
the goal and every other copy. They have no joints and collide with nothing, so the
physics, the expert and the rewards are exactly those of the clean task: only the frames
change (the arm may pass through a copy; it never moves one).
"""

from __future__ import annotations

import mujoco
import numpy as np

from saliency_rl.errors import EnvSpecError

__all__ = ["CLEARANCE", "OBJECT_COUNT", "DistractorObjects"]

OBJECT_COUNT = 3
CLEARANCE = 0.12
"""Metres between a copy's centre and the hand, the object, the goal and other copies."""
TABLE_X, TABLE_Y = (-0.35, 0.35), (0.45, 0.85)  # metres: the table in front of the robot
_NAME = "distractor_object_{}"
_PUCK = dict(type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[0.02, 0.02, 0], rgba=[0.8, 0.1, 0.1, 1])


class DistractorObjects:
    """Adds the copies to a ``MetaWorldEnv``'s model and places them at each reset.

    Args:
        env: the ``MetaWorldEnv`` (its model is recompiled with the copies and swapped in).
        count: copies to add.
    """

    def __init__(self, env, count: int = OBJECT_COUNT) -> None:
        from saliency_rl.envs.metaworld import MetaWorldEnv

        if not isinstance(env, MetaWorldEnv):
            raise EnvSpecError(
                f"distractor objects are copies of a Meta-World task's object; "
                f"{type(env).__name__} is not a metaworld task"
            )
        self.env = env
        model, data = env.model, env.data
        # salient points: hand, object (or handle), goal; reach has no object
        template = list(env.salient_geom_ids[1]) if len(env.salient_point_names) == 3 else []
        self.template_height = (
            float(data.geom_xpos[template[0]][2]) if template else 0.02  # resting on the table
        )
        spec = mujoco.MjSpec.from_file(env.mw_env.fullpath)
        for i in range(count):
            body = spec.worldbody.add_body(name=_NAME.format(i), pos=[0, 0, -1])
            if not template:
                body.add_geom(contype=0, conaffinity=0, **_PUCK)
            for g in template:
                geom = body.add_geom(
                    type=mujoco.mjtGeom(int(model.geom_type[g])), size=model.geom_size[g],
                    rgba=model.geom_rgba[g], pos=model.geom_pos[g], quat=model.geom_quat[g],
                    group=int(model.geom_group[g]), contype=0, conaffinity=0,
                )  # fmt: skip
                if model.geom_matid[g] >= 0:
                    geom.material = model.material(model.geom_matid[g]).name
                if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH:
                    geom.meshname = model.mesh(model.geom_dataid[g]).name
        env.swap_model(spec.compile())
        self.bodies = [env.model.body(_NAME.format(i)).id for i in range(count)]

    def place(self, rng: np.random.Generator) -> np.ndarray:
        """Seeded table positions for the copies, clear of the task's bodies: (count, 3)."""
        env = self.env
        taken = [env.data.geom("rail").xpos[:2].copy(), env.mw_env._target_pos[:2].copy()]
        if len(env.salient_point_names) == 3:
            taken.append(env._state[4:6].copy())  # the object (or handle)
        positions = []
        for body in self.bodies:
            for _ in range(1000):
                xy = rng.uniform([TABLE_X[0], TABLE_Y[0]], [TABLE_X[1], TABLE_Y[1]])
                if all(np.linalg.norm(xy - t) >= CLEARANCE for t in taken):
                    break
            else:
                raise EnvSpecError("no room on the table for the distractor objects")
            taken.append(xy)
            position = np.array([xy[0], xy[1], self.template_height])
            env.model.body_pos[body] = position
            positions.append(position)
        mujoco.mj_forward(env.model, env.data)
        return np.array(positions)
