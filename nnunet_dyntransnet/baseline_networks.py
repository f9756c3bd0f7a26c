"""The paper's baselines (Tables 4 and 5), built from an nnU-Net plan by the libraries that maintain them.

One :class:`BaselineSpec` per network says which library builds it, from which plan
entries, which configurations it can run and what its input size must be divisible by. The
trainers (``nnunet_dyntransnet.trainers.baselines``) and the benchmark read this table; a
new baseline is one entry here and one three-line trainer class.

The libraries are an extra (``pip install "nnunet-dyntransnet[baselines]"``: MONAI >= 1.6,
segmentation-models-pytorch) and are imported only when a network is built, so the plugin
and its trainers load without them.

Every network returns one logit map ``(B, classes, *patch)``: deep supervision is off for the
baselines (MONAI's ``DynUNet`` would return a stacked tensor, not nnU-Net's list of scales).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Sequence, Tuple

from torch import nn

from nnunet_dyntransnet.network.stage_layout import total_stride

__all__ = ["BaselineSpec", "BASELINES", "BaselineConfigurationError", "adapted_patch", "adapt_configuration",
           "build_baseline", "register_baseline"]


class BaselineConfigurationError(ValueError):
    """A baseline cannot run this configuration; the message says what to use instead."""


def _arch(cm) -> Dict[str, Any]:
    return cm.network_arch_init_kwargs


def _stride_product(cm) -> Tuple[int, ...]:
    """Per axis, the product of the plan's strides: the plan's own divisibility."""
    return total_stride(_arch(cm)["strides"], len(cm.patch_size))


def _fixed(n: int) -> Callable[[Any], Tuple[int, ...]]:
    return lambda cm: (n,) * len(cm.patch_size)


def _seg_res_net(cm, in_channels: int, classes: int) -> nn.Module:
    from monai.networks.nets import SegResNet

    # MONAI's defaults (BraTS configuration) except the width, which starts at the plan's stage-0 width
    return SegResNet(spatial_dims=len(cm.patch_size), in_channels=in_channels, out_channels=classes,
                     init_filters=int(_arch(cm)["features_per_stage"][0]), blocks_down=(1, 2, 2, 4), blocks_up=(1, 1, 1))


def _dyn_unet(cm, in_channels: int, classes: int) -> nn.Module:
    from monai.networks.nets import DynUNet

    arch = _arch(cm)
    strides = [list(s) if not isinstance(s, int) else s for s in arch["strides"]]
    return DynUNet(spatial_dims=len(cm.patch_size), in_channels=in_channels, out_channels=classes,
                   kernel_size=[list(k) if not isinstance(k, int) else k for k in arch["kernel_sizes"]],
                   strides=strides, upsample_kernel_size=strides[1:], filters=list(arch["features_per_stage"]),
                   norm_name=("INSTANCE", {"affine": True}), deep_supervision=False, res_block=False)


def _unetr(cm, in_channels: int, classes: int) -> nn.Module:
    from monai.networks.nets import UNETR

    # the paper's (Hatamizadeh et al. 2022) ViT-B/16: a learned position embedding fixes the input size
    return UNETR(in_channels=in_channels, out_channels=classes, img_size=tuple(cm.patch_size), feature_size=16,
                 hidden_size=768, mlp_dim=3072, num_heads=12, proj_type="conv", norm_name="instance",
                 spatial_dims=len(cm.patch_size))


def _swin_unetr(cm, in_channels: int, classes: int) -> nn.Module:
    from monai.networks.nets import SwinUNETR

    # MONAI >= 1.5 builds SwinUNETR for any size divisible by 32 (no img_size argument)
    return SwinUNETR(in_channels=in_channels, out_channels=classes, feature_size=48, spatial_dims=len(cm.patch_size))


def _vnet(cm, in_channels: int, classes: int) -> nn.Module:
    from monai.networks.nets import VNet

    if 16 % in_channels:
        raise BaselineConfigurationError(f"MONAI's VNet repeats the input to 16 channels, so it takes 1, 2, 4, 8 or "
                                         f"16 input channels, not {in_channels}")
    return VNet(spatial_dims=len(cm.patch_size), in_channels=in_channels, out_channels=classes)


def _attention_unet(cm, in_channels: int, classes: int) -> nn.Module:
    from monai.networks.nets import AttentionUnet

    arch = _arch(cm)
    return AttentionUnet(spatial_dims=len(cm.patch_size), in_channels=in_channels, out_channels=classes,
                         channels=list(arch["features_per_stage"]),
                         strides=[list(s) if not isinstance(s, int) else s for s in arch["strides"][1:]])


def _deeplab_v3_plus(cm, in_channels: int, classes: int) -> nn.Module:
    import segmentation_models_pytorch as smp

    # no ImageNet weights: nothing is downloaded, and a CT or MRI channel is no RGB image
    return smp.DeepLabV3Plus(encoder_name="resnet34", encoder_weights=None, in_channels=in_channels, classes=classes)


@dataclass(frozen=True)
class BaselineSpec:
    """How to build one baseline network from a plan.

    Attributes:
        network: the name the paper's table uses.
        library: the package that implements it.
        dims: spatial dimensionalities it can run (2 and/or 3).
        multiple: configuration manager -> per-axis number the patch must be divisible by.
        build: (configuration manager, input channels, classes) -> network returning logits.
        paper_row: where the paper reports it.
        min_cells: the fewest multiples the patch must hold over all axes together (SwinUNETR's last stage
            normalises over its voxels, so a patch of one 32-voxel cell leaves it one voxel and fails).
    """

    network: str
    library: str
    dims: Tuple[int, ...]
    multiple: Callable[[Any], Tuple[int, ...]]
    build: Callable[[Any, int, int], nn.Module]
    paper_row: str
    min_cells: int = 1


# trainer name suffix (nnUNetTrainer<KEY>) -> spec
BASELINES: Dict[str, BaselineSpec] = {
    "SegResNet": BaselineSpec("SegResNet", "monai", (2, 3), _fixed(8), _seg_res_net, "Table 4"),
    "DynUNet": BaselineSpec("DynUNet", "monai", (2, 3), _stride_product, _dyn_unet, "Table 4"),
    "UNETR": BaselineSpec("UNETR", "monai", (2, 3), _fixed(16), _unetr, "Table 4"),
    "SwinUNETR": BaselineSpec("SwinUNETR", "monai", (2, 3), _fixed(32), _swin_unetr, "Table 4", min_cells=2),
    "VNet": BaselineSpec("VNet", "monai", (2, 3), _fixed(16), _vnet, "Table 4"),
    "AttentionUNet": BaselineSpec("Attention U-Net", "monai", (2, 3), _stride_product, _attention_unet, "Table 5"),
    "DeepLabV3Plus": BaselineSpec("DeepLabV3+", "segmentation-models-pytorch", (2,), _fixed(16), _deeplab_v3_plus,
                                  "Table 5"),
}


def register_baseline(key: str, spec: BaselineSpec) -> BaselineSpec:
    """Make ``spec`` the network that a trainer with ``baseline = key`` trains (a three-line subclass of
    ``nnunet_dyntransnet.trainers.baselines.BaselineTrainer``, named ``nnUNetTrainer<key>`` by convention); the
    benchmark and the report's cost columns find it by ``spec.network``. Returns ``spec``."""
    if not isinstance(spec, BaselineSpec):
        raise TypeError(f"register_baseline({key!r}, ...): {spec!r} is not a BaselineSpec, which states what a "
                        f"baseline must give (library, dimensionalities, divisibility, build)")
    if not spec.dims or not set(spec.dims) <= {2, 3}:
        raise ValueError(f"register_baseline({key!r}, ...): dims {spec.dims} must name 2 and/or 3 spatial axes")
    BASELINES[key] = spec
    return spec


def adapted_patch(patch: Sequence[int], multiple: Sequence[int], min_cells: int = 1) -> List[int]:
    """Each axis rounded up to its multiple: ``[80, 160, 160]`` with 32 -> ``[96, 160, 160]``; then, while the patch
    holds fewer than ``min_cells`` multiples in all, the longest axis grows by one multiple."""
    used = [int(math.ceil(p / m) * m) for p, m in zip(patch, multiple)]
    while math.prod(u // m for u, m in zip(used, multiple)) < min_cells:
        longest = max(range(len(used)), key=lambda i: used[i])
        used[longest] += multiple[longest]
    return used


def adapt_configuration(key: str, configuration_manager, configuration_name: str = "") -> Tuple[List[int], List[int]]:
    """Check that baseline ``key`` can run this configuration and round its patch up in place.

    The configuration manager is the one the trainer trains with and nnU-Net's predictor slides
    its window with, so training and prediction see the same patch. Returns ``(planned, used)``.

    Raises:
        BaselineConfigurationError: a 3D configuration for a 2D network, or the reverse.
    """
    spec = BASELINES[key]
    planned = [int(p) for p in configuration_manager.patch_size]
    if len(planned) not in spec.dims:
        other = "2d" if 2 in spec.dims else "3d_fullres"
        raise BaselineConfigurationError(
            f"nnUNetTrainer{key}: {spec.network} ({spec.library}) is a {'/'.join(f'{d}D' for d in spec.dims)} "
            f"network and cannot train the {len(planned)}D configuration {configuration_name or planned}; "
            f"train it on '{other}' instead")
    used = adapted_patch(planned, spec.multiple(configuration_manager), spec.min_cells)
    configuration_manager.configuration["patch_size"] = used
    return planned, used


def build_baseline(key: str, configuration_manager, in_channels: int, classes: int) -> nn.Module:
    """Baseline ``key`` for this configuration (whose patch is adapted in place first)."""
    if key not in BASELINES:
        raise ValueError(f"unknown baseline {key!r}; choose from {', '.join(BASELINES)}")
    adapt_configuration(key, configuration_manager)
    return BASELINES[key].build(configuration_manager, in_channels, classes)
