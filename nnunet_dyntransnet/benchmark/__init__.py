"""``dyntransnet_benchmark``: speed and memory of DynTransNet against nnU-Net's networks from the same plan.

Modules: ``networks`` (the plan and the networks), ``measure`` (training step, inference,
FLOPs, memory, child processes), ``child`` (one measurement in a fresh interpreter),
``attention_cost`` (the dynamic bias's price), ``memory_check`` (the planning estimate
against measured memory), ``cli`` (the command).
"""
from nnunet_dyntransnet.benchmark.cli import entry, format_table, main
from nnunet_dyntransnet.benchmark.networks import build_networks, default_plan, plan_from_file

__all__ = ["entry", "main", "format_table", "default_plan", "plan_from_file", "build_networks"]
