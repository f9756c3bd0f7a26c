"""The plan every benchmarked network is built from, and the networks: nnU-Net's, Primus-S, DynTransNet.

Every builder takes the same plan (nnU-Net's default topology for a patch, or a configuration
of a real ``nnUNetPlans.json``), so the networks see the same patch, stages and widths:

* ``PlainConvUNet``: nnU-Net's default U-Net (the reference every ratio is against);
* ``ResEnc M``: nnU-Net's residual-encoder U-Net with the ResEnc presets' blocks per stage
  (1, 3, 4, 6, 6, 6, ...) and one conv per decoder stage, on the same stages and widths;
* ``Primus-S``: nnU-Net's ``nnUNet_Primus_S_Trainer`` network (needs a patch divisible by 8);
* ``DynTransNet``, ``DynTransNet, plain MSA`` (the ablation without the dynamic bias, which
  prices it) and ``DynTransNet, checkpointed`` (``activation_checkpointing=True``, as
  ``nnUNetTrainerDynTransNet_Checkpointed`` trains it);
* the paper's baselines (``BASELINE_NETWORKS``: SegResNet, DynUNet, UNETR, SwinUNETR, VNet,
  Attention U-Net, DeepLabV3+), built exactly as their trainers build them
  (:mod:`nnunet_dyntransnet.baseline_networks`), including the patch rounded up to what the network
  needs: the child then measures at that patch and records it;
* ``DynTransNet[option=value,...]``: DynTransNet with constructor options changed, for measuring
  a variant before it becomes a trainer (``DynTransNet[mlp_ratio=2,head_dim=64]``).
"""
from __future__ import annotations

import ast
import re
from typing import Any, Callable, Dict, List, Optional, Sequence

from torch import nn

from nnunet_dyntransnet.baseline_networks import BASELINES, build_baseline

__all__ = ["default_plan", "plan_from_file", "build_networks", "NETWORKS", "BASELINE_NETWORKS", "baselines_for",
           "estimate_feature_map_size", "network_of_trainer", "variant_options"]

NETWORKS = ("PlainConvUNet", "ResEnc M", "Primus-S", "DynTransNet", "DynTransNet, plain MSA", "DynTransNet, checkpointed")
# benchmark name -> key of nnunet_dyntransnet.baseline_networks.BASELINES (the names of the paper's tables)
BASELINE_NETWORKS = {spec.network: key for key, spec in BASELINES.items()}


def network_of_trainer(trainer_class) -> Optional[str]:
    """The benchmark's name for the network a trainer class trains, or None if the benchmark has no such row."""
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    from nnunet_dyntransnet.trainers import nnUNetTrainerDynTransNet, nnUNetTrainerDynTransNet_Paper

    if trainer_class.build_network_architecture is nnUNetTrainer.build_network_architecture:
        return "PlainConvUNet"  # nnU-Net's trainer or a variant of it that keeps its network (nnUNetTrainer_WallClock)
    if getattr(trainer_class, "baseline", ""):
        return BASELINES[trainer_class.baseline].network
    if issubclass(trainer_class, (nnUNetTrainerDynTransNet, nnUNetTrainerDynTransNet_Paper)):
        return {(): "DynTransNet", (("activation_checkpointing", True),): "DynTransNet, checkpointed",
                (("attention", "msa"),): "DynTransNet, plain MSA"}.get(tuple(sorted(trainer_class.network_options.items())))
    return None


def baselines_for(dims: int) -> List[str]:
    """The baselines that can run a plan of ``dims`` spatial axes."""
    return [name for name, key in BASELINE_NETWORKS.items() if dims in BASELINES[key].dims]


def default_plan(patch_size: Sequence[int], spacing: Optional[Sequence[float]] = None):
    """A configuration like nnU-Net's default ExperimentPlanner makes for this patch and spacing.

    Topology (strides, kernels, stage count) comes from nnU-Net's own ``get_pool_and_conv_props``;
    widths double from 32 up to 320 (3D) or 512 (2D); two convs per stage.
    """
    from nnunetv2.experiment_planning.experiment_planners.network_topology import get_pool_and_conv_props

    spacing = list(spacing or [1.0] * len(patch_size))
    _, strides, kernels, patch, _ = get_pool_and_conv_props(spacing, list(patch_size), 4, 999999)
    if list(patch) != list(patch_size):
        raise ValueError(f"patch {list(patch_size)} is not one nnU-Net would plan; the nearest valid one is {list(patch)}")
    n = len(strides)
    cap = 320 if len(patch_size) == 3 else 512
    dim = len(patch_size)
    arch = dict(
        n_stages=n, features_per_stage=[min(32 * 2 ** i, cap) for i in range(n)],
        conv_op=f"torch.nn.modules.conv.Conv{dim}d", kernel_sizes=kernels, strides=strides,
        n_conv_per_stage=[2] * n, n_conv_per_stage_decoder=[2] * (n - 1), conv_bias=True,
        norm_op=f"torch.nn.modules.instancenorm.InstanceNorm{dim}d", norm_op_kwargs={"eps": 1e-5, "affine": True},
        dropout_op=None, dropout_op_kwargs=None, nonlin="torch.nn.LeakyReLU", nonlin_kwargs={"inplace": True},
    )
    from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager

    return ConfigurationManager(dict(
        patch_size=list(patch_size), spacing=spacing, batch_size=2,
        architecture=dict(network_class_name="dynamic_network_architectures.architectures.unet.PlainConvUNet",
                          arch_kwargs=arch, _kw_requires_import=["conv_op", "norm_op", "dropout_op", "nonlin"]),
    ))


def plan_from_file(path: str, configuration: str):
    """The ``ConfigurationManager`` of one configuration of an ``nnUNetPlans.json``."""
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    return PlansManager(path).get_configuration(configuration)


def _resenc_m_kwargs(arch: dict) -> dict:
    # the blocks per stage of nnU-Net's ResEnc planners (nnUNetPlannerResEncM/L/XL)
    n = len(arch["features_per_stage"])
    kwargs = {k: v for k, v in arch.items() if k not in ("n_conv_per_stage", "n_conv_per_stage_decoder")}
    kwargs.update(n_blocks_per_stage=[1, 3, 4, 6, 6, 6, 6, 6, 6, 6, 6, 6][:n], n_conv_per_stage_decoder=[1] * (n - 1))
    return kwargs


def variant_options(name: str) -> Optional[Dict[str, Any]]:
    """``"DynTransNet[mlp_ratio=2,head_dim=64]"`` -> ``{"mlp_ratio": 2, "head_dim": 64}``; None for other names.

    Raises:
        ValueError: an option DynTransNet's constructor does not have, or a malformed list.
    """
    from nnunet_dyntransnet.network import network_defaults

    match = re.fullmatch(r"DynTransNet\[(.+)\]", name.strip())
    if match is None:
        return None
    options, known = {}, network_defaults()
    for part in match.group(1).split(","):
        key, eq, value = (p.strip() for p in part.partition("="))
        if not eq or key not in known:
            raise ValueError(f"{name}: {part.strip()!r} is not OPTION=VALUE with an option of DynTransNet "
                             f"({', '.join(sorted(known))})")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value  # a bare word: a string option such as attention=msa
    return options


def build_networks(plan, in_channels: int, num_classes: int, deep_supervision: bool = True,
                   names: Sequence[str] = NETWORKS) -> Dict[str, Callable[[], nn.Module]]:
    """Builders, by name, for the networks in ``names``; each built from the same plan."""
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    from nnunet_dyntransnet.network import DynTransNet

    arch = dict(plan.network_arch_init_kwargs)
    imports = plan.network_arch_init_kwargs_req_import

    def plain() -> nn.Module:
        return get_network_from_plans("dynamic_network_architectures.architectures.unet.PlainConvUNet",
                                      {k: v for k, v in arch.items() if k != "n_blocks_per_stage"}, imports,
                                      in_channels, num_classes, allow_init=True, deep_supervision=deep_supervision)

    def resenc_m() -> nn.Module:
        return get_network_from_plans("dynamic_network_architectures.architectures.unet.ResidualEncoderUNet",
                                      _resenc_m_kwargs(arch), imports, in_channels, num_classes, allow_init=True,
                                      deep_supervision=deep_supervision)

    def primus_s() -> nn.Module:
        from nnunetv2.training.nnUNetTrainer.primus.primus_trainers import nnUNet_Primus_S_Trainer

        if any(p % 8 for p in plan.patch_size) or len(plan.patch_size) != 3:
            raise ValueError(f"Primus-S needs a 3D patch divisible by 8, got {list(plan.patch_size)}")
        return nnUNet_Primus_S_Trainer.build_network_architecture(None, plan, in_channels, num_classes, False)

    builders = {
        "PlainConvUNet": plain,
        "ResEnc M": resenc_m,
        "Primus-S": primus_s,
        "DynTransNet": lambda: DynTransNet.from_plan(plan, in_channels, num_classes, deep_supervision),
        "DynTransNet, plain MSA": lambda: DynTransNet.from_plan(plan, in_channels, num_classes, deep_supervision,
                                                                 attention="msa"),
        "DynTransNet, checkpointed": lambda: DynTransNet.from_plan(plan, in_channels, num_classes, deep_supervision,
                                                                    activation_checkpointing=True),
    }
    for name, key in BASELINE_NETWORKS.items():
        builders[name] = lambda key=key: build_baseline(key, plan, in_channels, num_classes)
    for name in names:
        options = variant_options(name)
        if options is not None:
            builders[name] = lambda options=options: DynTransNet.from_plan(plan, in_channels, num_classes,
                                                                           deep_supervision, **options)
    unknown = [n for n in names if n not in builders]
    if unknown:
        raise ValueError(f"unknown network(s) {unknown}; choose from {list(builders)}")
    return {n: builders[n] for n in names}


def estimate_feature_map_size(model: nn.Module, patch: Sequence[int]) -> Optional[int]:
    """The network's ``compute_conv_feature_map_size`` (nnU-Net's planning estimate), where it has one."""
    fn = getattr(model, "compute_conv_feature_map_size", None)
    try:
        return int(fn(list(patch))) if fn is not None else None
    except NotImplementedError:  # Primus has the method but does not implement it
        return None
