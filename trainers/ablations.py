"""One trainer per ablation row of the paper (Tables 2 and 3), each a DynTransNet built with other options.

Every trainer shares nnUNetTrainerDynTransNet's recipe and differs only in the network, so
the rows compare architectures. "FM-M off" means simple concatenation (Table 2's first row).

| trainer | D-MSA | skip fusion | RM | paper |
|---|---|---|---|---|
| nnUNetTrainerDynTransNet_Baseline | - | concat | - | Table 3, baseline |
| nnUNetTrainerDynTransNet_DMSA | yes | concat | - | Table 3 |
| nnUNetTrainerDynTransNet_FMM | - | FM-M | - | Table 3 |
| nnUNetTrainerDynTransNet_RM | - | concat | yes | Table 3 |
| nnUNetTrainerDynTransNet_DMSA_FMM | yes | FM-M | - | Table 3 |
| nnUNetTrainerDynTransNet_DMSA_RM | yes | concat | yes | Table 3; also Table 2 "simple concatenation" |
| nnUNetTrainerDynTransNet_FMM_RM | - | FM-M | yes | Table 3 |
| nnUNetTrainerDynTransNet (full model) | yes | FM-M | yes | Tables 2 and 3, last row |
| nnUNetTrainerDynTransNet_WeightedSum | yes | weighted sum | yes | Table 2 "weighted sum" |
"""
from __future__ import annotations

from typing import Dict, Type

from nnunet_dyntransnet.network import DynTransNet
from nnunet_dyntransnet.trainers.dyntransnet import nnUNetTrainerDynTransNet

# trainer name suffix -> DynTransNet options
ABLATIONS: Dict[str, dict] = {
    "Baseline": dict(dynamic_bias=False, fusion="concat", residual_refine=False),
    "DMSA": dict(dynamic_bias=True, fusion="concat", residual_refine=False),
    "FMM": dict(dynamic_bias=False, fusion="feature_mix", residual_refine=False),
    "RM": dict(dynamic_bias=False, fusion="concat", residual_refine=True),
    "DMSA_FMM": dict(dynamic_bias=True, fusion="feature_mix", residual_refine=False),
    "DMSA_RM": dict(dynamic_bias=True, fusion="concat", residual_refine=True),
    "FMM_RM": dict(dynamic_bias=False, fusion="feature_mix", residual_refine=True),
    "WeightedSum": dict(dynamic_bias=True, fusion="weighted_sum", residual_refine=True),
}


def _ablation_trainer(suffix: str, options: dict) -> Type[nnUNetTrainerDynTransNet]:
    # build_network_architecture is a static method (inference calls it without an instance), so each
    # row gets its own class with the options bound in, rather than an attribute read at run time.
    def build_network_architecture(plans_manager, configuration_manager, num_input_channels,
                                   num_output_channels, enable_deep_supervision=True):
        return DynTransNet.from_plan(configuration_manager, num_input_channels, num_output_channels,
                                     enable_deep_supervision, **options)

    name = f"nnUNetTrainerDynTransNet_{suffix}"
    described = ", ".join(f"{k}={v!r}" for k, v in options.items())
    return type(name, (nnUNetTrainerDynTransNet,), {
        "build_network_architecture": staticmethod(build_network_architecture),
        "ablation_options": dict(options),
        "__doc__": f"DynTransNet ablation ({described}); recipe as nnUNetTrainerDynTransNet.",
        "__module__": __name__,
        "__qualname__": name,
    })


ABLATION_TRAINERS = {s: _ablation_trainer(s, o) for s, o in ABLATIONS.items()}
globals().update({cls.__name__: cls for cls in ABLATION_TRAINERS.values()})
__all__ = sorted(cls.__name__ for cls in ABLATION_TRAINERS.values()) + ["ABLATIONS", "ABLATION_TRAINERS"]
