"""nnU-Net experiment planners for DynTransNet (installed as ``nnunet_dyntransnet.plans``).

See :mod:`nnunet_dyntransnet.plans.dyntransnet_planner` and the command
``dyntransnet_plan_and_preprocess`` (:mod:`nnunet_dyntransnet.plans.cli`).
"""
from nnunet_dyntransnet.plans.dyntransnet_planner import PRESETS, DynTransNetPlanner, plans_name_for

__all__ = ["PRESETS", "DynTransNetPlanner", "plans_name_for"]
