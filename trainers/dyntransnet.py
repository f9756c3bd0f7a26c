"""``nnUNetTrainerDynTransNet``: nnU-Net's pipeline with DynTransNet and nnU-Net's transformer recipe.

Every DynTransNet trainer (this one, the ablations, ``_Paper``, the demo's) builds its network
through :class:`BuildsDynTransNet`: a variant states its network once, as the class attribute
``network_options``, and the trainer records the options it used in the result folder's plans.
"""
from __future__ import annotations

from typing import Any, ClassVar, Dict, Tuple

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.training.nnUNetTrainer.variants.lr_schedule.nnUNetTrainer_warmup import nnUNetTrainer_warmup
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from nnunet_dyntransnet.network.gpu_fit import (CHECKPOINTING_ENV, DoesNotFitError, checkpointing_mode, fit_to_gpu,
                                                free_gpu_bytes)
from nnunet_dyntransnet.network import DynTransNet, network_defaults
from nnunet_dyntransnet.network.transformer import TransformerStage
from nnunet_dyntransnet.trainers.budget import nnUNetTrainer_WallClock
from nnunet_dyntransnet.trainers.optimizer_per_part import (OPTIMIZER_NAMES, OptimizerPerPart, PolyLRSchedulerPerGroup,
                                                            optimizer_kind, split_parameters)
from nnunet_dyntransnet.trainers.recipe import LoadsWarmupCheckpoints, TransformerRecipeTrainer
from nnunet_dyntransnet.trainers.refusal import ChecksResume, TrainingRefused

__all__ = ["BuildsDynTransNet", "OPTIONS_KEY", "nnUNetTrainerDynTransNet", "nnUNetTrainerDynTransNet_AdamW",
           "nnUNetTrainerDynTransNet_PerPart", "nnUNetTrainerDynTransNet_Warmup",
           "nnUNetTrainerDynTransNet_Checkpointed",
           "nnUNetTrainerDynTransNet_SelectiveCheckpointed"]


# The plans entry in which a trainer records the options it built DynTransNet with; nnU-Net copies the
# plans into the result folder, so the folder says which network its checkpoints hold.
OPTIONS_KEY = "dyntransnet_network_options"
# Constructor arguments that shape the network beyond the plan; each trainer records all of them.
ARCHITECTURE_OPTIONS = ("transformer_depth", "head_dim", "mlp_ratio", "window_size", "max_global_tokens",
                        "drop_path_rate", "attention", "fusion", "residual_refine", "activation_checkpointing",
                        "selective_checkpointing", "selective_depth", "conv_stages", "rm_post_activation",
                        "rm_shortcut", "linear_init", "patch_embedding")
# Options added after trainers began recording theirs, with the value every network had before: a record
# without one was built with that value, whatever the default is now.
RECORDED_BEFORE_THE_OPTION: Dict[str, Any] = {"conv_stages": 1, "rm_post_activation": False, "rm_shortcut": "fused",
                                              "linear_init": "vit", "patch_embedding": "linear"}
# Version 0.1.0 recorded nothing and built with these defaults: a result folder without the record was
# trained with them, and keeps predicting with them.
LEGACY_0_1_OPTIONS: Dict[str, Any] = {"transformer_depth": None, "head_dim": 32, "mlp_ratio": 4.0, "window_size": 8,
                                       "selective_checkpointing": False, **RECORDED_BEFORE_THE_OPTION}


class BuildsDynTransNet(ChecksResume):
    """Mixin for a trainer that builds DynTransNet.

    - ``network_options`` (class attribute): the keyword arguments of
      :class:`~nnunet_dyntransnet.network.DynTransNet` that make a variant; ``network_options_for`` may add
      ones that depend on the plan (the CPU demo's widths).
    - The options, completed with the network's current defaults, are recorded in the plans
      (``dyntransnet_network_options``), which nnU-Net copies into the result folder; prediction and
      export build from the record, so a change of defaults never changes a trained model. ``--c`` rebuilds
      from the current options (nnU-Net re-creates the trainer from the preprocessed plans) and refuses a
      checkpoint whose recorded network differs.
    - ``build_network_architecture`` is the one builder of every DynTransNet trainer; a classmethod,
      called with the arguments of nnU-Net's own static method.
    - ``DYNTRANSNET_CHECKPOINTING`` is read (and checked) when the trainer is created; on CUDA,
      ``initialize`` switches activation checkpointing on when the plan fits the GPU only with it
      (``gpu_fit``) and stops when it does not fit at all; elsewhere ``on``/``off`` are applied as given.
    """

    network_options: ClassVar[Dict[str, Any]] = {}

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        try:  # before nnU-Net's __init__ creates the fold folder
            self.checkpointing_mode = checkpointing_mode()
        except ValueError as e:
            raise TrainingRefused(str(e)) from None
        super().__init__(plans, configuration, fold, dataset_json, device)
        defaults = network_defaults()
        recorded = {**{k: defaults[k] for k in ARCHITECTURE_OPTIONS}, **self.network_options_for(self.configuration_manager)}
        # the configuration manager holds the plans' dict itself, or for an inheriting configuration a merged copy
        self.plans_manager.plans["configurations"][configuration][OPTIONS_KEY] = recorded
        self.configuration_manager.configuration[OPTIONS_KEY] = recorded

    @classmethod
    def network_options_for(cls, configuration_manager: ConfigurationManager) -> Dict[str, Any]:
        """The options this trainer builds DynTransNet with for this configuration (default: ``network_options``)."""
        return dict(cls.network_options)

    @classmethod
    def build_network_architecture(cls, plans_manager: PlansManager, configuration_manager: ConfigurationManager,
                                   num_input_channels: int, num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        # a ConfigurationManager, or any object with its attributes (then with nothing recorded)
        recorded = getattr(configuration_manager, "configuration", {}).get(OPTIONS_KEY)
        options = {**RECORDED_BEFORE_THE_OPTION, **recorded} if recorded is not None else {
            **LEGACY_0_1_OPTIONS, **cls.network_options_for(configuration_manager), **RECORDED_BEFORE_THE_OPTION}
        return DynTransNet.from_plan(configuration_manager, num_input_channels, num_output_channels,
                                     enable_deep_supervision, **options)

    def check_resumable(self, checkpoint: Dict[str, Any], path: str) -> None:
        """``--c``: the checkpoint's network must be the one this trainer builds."""
        planned = checkpoint.get("init_args", {}).get("plans", {}).get("configurations", {}).get(self.configuration_name, {})
        recorded, now = planned.get(OPTIONS_KEY), self.configuration_manager.configuration[OPTIONS_KEY]
        if recorded is not None:  # options added since were what the record's network had
            recorded = {**RECORDED_BEFORE_THE_OPTION, **recorded}
        if recorded != now:
            was = "version 0.1's network (it recorded no options)" if recorded is None else f"the options {recorded}"
            raise TrainingRefused(f"{path} was trained with {was}; this trainer builds {now}, so --c cannot continue "
                                  f"it. Continue it with the version that started it, or train a new fold (predicting "
                                  f"with it works: prediction builds the recorded network)")
        super().check_resumable(checkpoint, path)

    def environment_recipe(self) -> Dict[str, Any]:
        """What environment variables changed in this training (the budget's mixin adds its own)."""
        inherited = getattr(super(), "environment_recipe", dict)()
        return {**inherited, "checkpointing_mode": self.checkpointing_mode}

    def initialize(self) -> None:
        super().initialize()
        if self.device.type == "cuda":
            self.fit_to_gpu(free_gpu_bytes(self.device))
        elif self.checkpointing_mode != "auto":  # no free-memory decision off CUDA: the user's word holds
            self._network_module().set_activation_checkpointing(self.checkpointing_mode == "on")
            self.print_to_log_file(f"activation checkpointing {self.checkpointing_mode} ({CHECKPOINTING_ENV}="
                                   f"{self.checkpointing_mode}; on {self.device.type} it is not decided from free memory)")

    def _network_module(self):
        network = self.network.module if isinstance(self.network, DDP) else self.network
        return getattr(network, "_orig_mod", network)  # torch.compile's wrapper compiles at the first step

    def fit_to_gpu(self, free_bytes: int) -> None:
        """Activation checkpointing on when the training would not fit ``free_bytes`` without it (``gpu_fit``);
        stops with a message naming the planner when it would not fit even with it."""
        network = self._network_module()
        dataset_id = self.plans_manager.dataset_name.split("_")[0].replace("Dataset", "")
        try:
            decision = fit_to_gpu(network, self.batch_size, free_bytes, dataset=dataset_id, mode=self.checkpointing_mode,
                                  class_default=self.configuration_manager.configuration[OPTIONS_KEY].get(
                                      "activation_checkpointing", False))
        except DoesNotFitError as e:
            self.print_to_log_file(f"stopped before training: {e}")
            raise
        self.print_to_log_file(decision.message)


class nnUNetTrainerDynTransNet(BuildsDynTransNet, nnUNetTrainer_WallClock):
    """DynTransNet built from the plan, trained with nnU-Net's own recipe: SGD (lr 1e-2, Nesterov momentum 0.99,
    weight decay 3e-5), polynomial decay, Dice + CE with deep supervision, as nnU-Net's U-Net and the hierarchical
    transformer hybrids trained in nnU-Net's pipeline (nnFormer, UNETR++). The transformer recipe it had before
    (AdamW 3e-4 with warm-up, nnU-Net's recipe for the plain ViT Primus) is ``nnUNetTrainerDynTransNet_AdamW``;
    docs/network.md, "Defaults, and why", cites the screen that chose between them.
    """

    # the optimizer whose state this trainer's checkpoints hold (``optimizer_per_part.optimizer_kind``)
    trains_with: ClassVar[str] = "sgd"

    def check_resumable(self, checkpoint: Dict[str, Any], path: str) -> None:
        """``--c`` of a fold whose optimizer was another is refused: its state does not load into this one's. A fold
        trained with the AdamW recipe (this trainer's recipe before 2026-12) is told where it continues."""
        kind = optimizer_kind(checkpoint)
        if kind == "adam" and self.trains_with == "sgd":
            raise TrainingRefused(f"{path} was trained with the AdamW recipe, this trainer's before 2026-12; it now "
                                  f"trains with SGD. Continue it as nnUNetTrainerDynTransNet_AdamW (rename the "
                                  f"result folder's trainer part to it), or train a new fold (predicting with it works)")
        if kind != self.trains_with:
            raise TrainingRefused(f"{path} was trained with {OPTIMIZER_NAMES[kind]}; {type(self).__name__} trains "
                                  f"with {OPTIMIZER_NAMES[self.trains_with]}, so --c cannot continue it. Continue it "
                                  f"with the trainer that started it, or train a new fold (predicting with it works)")
        super().check_resumable(checkpoint, path)


class nnUNetTrainerDynTransNet_PerPart(nnUNetTrainerDynTransNet):
    """DynTransNet with an optimizer per part (``optimizer_per_part.py``): nnU-Net's SGD recipe for the
    convolutions (stem, conv stages, decoder, heads) and nnU-Net's transformer recipe's AdamW (lr 3e-4, weight decay
    5e-2, betas 0.9/0.98, as for Primus) for the encoder's transformer stages (patch projections, D-MSA blocks,
    norms); both decay polynomially from their own rate over the same epochs (no warm-up)."""

    trains_with = "per_part"
    transformer_lr: ClassVar[float] = 3e-4
    transformer_weight_decay: ClassVar[float] = 5e-2
    transformer_betas: ClassVar[Tuple[float, float]] = (0.9, 0.98)

    def configure_optimizers(self):
        transformer, convolutions = split_parameters(self._network_module(), (TransformerStage,))
        # nnU-Net's own optimizer, built over the whole network only to read its settings (rate, momentum, Nesterov,
        # weight decay): the convolutions get exactly what nnU-Net gives them, whatever its version sets
        nnunet_sgd, _ = nnUNetTrainer.configure_optimizers(self)
        parts = {"convolutions": type(nnunet_sgd)(convolutions, **nnunet_sgd.defaults)}
        if transformer:  # conv_stages may leave none
            parts["transformer"] = torch.optim.AdamW(transformer, self.transformer_lr, betas=self.transformer_betas,
                                                     weight_decay=self.transformer_weight_decay)
        optimizer = OptimizerPerPart(parts)
        return optimizer, PolyLRSchedulerPerGroup(optimizer, self.initial_lr, self.num_epochs)


class nnUNetTrainerDynTransNet_AdamW(BuildsDynTransNet, TransformerRecipeTrainer):
    """DynTransNet with nnU-Net's transformer recipe (``recipe.py``: AdamW 3e-4, warm-up, poly), the default
    recipe until 2026-12. Unlike Primus, DynTransNet has a U-Net decoder with a head per level, so deep
    supervision stays on."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.enable_deep_supervision = True

    def set_deep_supervision_enabled(self, enabled: bool) -> None:
        # AbstractPrimus turns this into a no-op; DynTransNet's decoder has the switch nnU-Net expects.
        nnUNetTrainer.set_deep_supervision_enabled(self, enabled)


class nnUNetTrainerDynTransNet_Warmup(LoadsWarmupCheckpoints, nnUNetTrainerDynTransNet, nnUNetTrainer_warmup):
    """The main trainer with nnU-Net's warm-up of the whole network (``nnUNetTrainer_warmup``): the same SGD, its
    rate raised linearly over the first 50 of the 1000 epochs, then the polynomial decay over the rest (Primus's
    schedule with nnU-Net's optimizer). Under ``DYNTRANSNET_TRAIN_MINUTES`` or ``DYNTRANSNET_TRAIN_EPOCHS`` the
    warm-up is a tenth of the epochs (``budget.py``), as the transformer recipe's is."""


class nnUNetTrainerDynTransNet_Checkpointed(nnUNetTrainerDynTransNet):
    """The same network and recipe with activation checkpointing at the highest resolution (the first
    transformer stage and the full-resolution decoder level): those parts keep only their inputs for backward
    and are recomputed there, trading step time for activation memory (measured in docs/speed_and_memory.md)."""

    network_options = dict(activation_checkpointing=True)


class nnUNetTrainerDynTransNet_SelectiveCheckpointed(nnUNetTrainerDynTransNet):
    """The same network and recipe with selective activation checkpointing in every part, the stem too
    (``nnunet_dyntransnet.network.checkpointing``; the default covers the transformer blocks and the decoder): a
    smaller activation count than the default's for more recomputation in backward (measured in
    docs/speed_and_memory.md). The fit-to-GPU decision can still add full checkpointing at the highest resolution."""

    network_options = dict(selective_checkpointing=True)
