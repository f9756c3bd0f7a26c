"""One optimizer per part of the network, as one object nnU-Net's trainer can step, schedule and checkpoint.

Why: under nnU-Net's SGD (lr 1e-2, Nesterov momentum 0.99) the transformer blocks' attention logits stay as flat
as at init within the screens' budget (``docs/comparison/screens/attention_spread``), while AdamW sharpens them;
AdamW for the whole network costs the convolutions Dice. So each part gets the optimizer it trains well with:
nnU-Net's SGD for the convolutions, nnU-Net's transformer recipe (AdamW, as for Primus) for the transformer stages.

- :class:`OptimizerPerPart` holds one torch optimizer per part and is itself a ``torch.optim.Optimizer`` (the
  learning-rate schedulers and AMP's ``GradScaler`` accept only those): its ``param_groups`` are the parts' own
  group dicts in part order, so whatever sets a group's ``lr`` sets the part's; ``step`` and ``zero_grad`` go to
  every part; ``state_dict`` keeps each part's under its name (``{"parts": {name: state}}``).
- :class:`PolyLRSchedulerPerGroup` is nnU-Net's polynomial decay (same factor, same ``max_steps`` that the
  wall-clock budget resizes) applied to each group's own initial learning rate, where nnU-Net's
  ``PolyLRScheduler`` sets one rate for every group.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import torch
from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler
from torch import nn

__all__ = ["OptimizerPerPart", "PolyLRSchedulerPerGroup", "split_parameters", "optimizer_kind", "OPTIMIZER_NAMES"]


class OptimizerPerPart(torch.optim.Optimizer):
    """Several torch optimizers, one per part (``{name: optimizer}``, disjoint parameters), stepped as one."""

    def __init__(self, parts: Mapping[str, torch.optim.Optimizer]) -> None:
        if not parts:
            raise ValueError("OptimizerPerPart needs at least one part")
        self.parts: Dict[str, torch.optim.Optimizer] = dict(parts)
        # Optimizer.__init__ appends each group dict itself (no defaults to fill in): the parts' groups, shared
        super().__init__(self._parts_groups(), defaults={})

    def _parts_groups(self) -> List[Dict[str, Any]]:
        return [group for optimizer in self.parts.values() for group in optimizer.param_groups]

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], torch.Tensor]] = None) -> Optional[torch.Tensor]:
        loss = None
        if closure is not None:  # evaluated once, not once per part
            with torch.enable_grad():
                loss = closure()
        for optimizer in self.parts.values():
            optimizer.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.parts.values():
            optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> Dict[str, Any]:
        return {"parts": {name: optimizer.state_dict() for name, optimizer in self.parts.items()}}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        saved = state_dict.get("parts")
        if saved is None or set(saved) != set(self.parts):
            raise ValueError(f"this optimizer has the parts {sorted(self.parts)}; the state to load has "
                             f"{sorted(saved) if saved is not None else 'none (a single optimizer state)'}")
        for name, optimizer in self.parts.items():
            optimizer.load_state_dict(saved[name])
        # each part's load_state_dict made new group dicts: share those
        self.param_groups = self._parts_groups()

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        if getattr(self, "parts", None) is not None and any(param_group is g for g in self._parts_groups()):
            super().add_param_group(param_group)  # a part's group, while __init__ shares it
            return
        raise TypeError("OptimizerPerPart takes its groups from its parts: add the group to one of them "
                        f"({', '.join(self.parts)}) before building it")


class PolyLRSchedulerPerGroup(PolyLRScheduler):
    """nnU-Net's polynomial decay, ``lr = initial * (1 - step / max_steps) ** exponent``, with each group's own
    initial rate (``group["initial_lr"]``, its rate when the scheduler was built; kept in checkpoints).
    ``initial_lr`` is the first group's, for the code that reads one."""

    def step(self, current_step: Optional[int] = None) -> None:
        if current_step is None or current_step == -1:
            current_step, self.ctr = self.ctr, self.ctr + 1
        factor = (1 - current_step / self.max_steps) ** self.exponent
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


def split_parameters(network: nn.Module, part_types: Tuple[type, ...]) -> Tuple[List[nn.Parameter], List[nn.Parameter]]:
    """``(in_part, rest)``: the trainable parameters of every module of ``part_types`` (with their children), and
    all others, each in ``network.parameters()`` order."""
    in_part = {id(p) for module in network.modules() if isinstance(module, part_types) for p in module.parameters()}
    trainable = [p for p in network.parameters() if p.requires_grad]
    return [p for p in trainable if id(p) in in_part], [p for p in trainable if id(p) not in in_part]


# The kinds :func:`optimizer_kind` tells apart, as a refusal of ``--c`` names them.
OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam or AdamW", "per_part": "an optimizer per part (SGD and AdamW)"}


def optimizer_kind(checkpoint: Mapping[str, Any]) -> str:
    """Which optimizer an nnU-Net checkpoint was trained with: ``"per_part"`` (:class:`OptimizerPerPart`),
    ``"adam"`` (Adam or AdamW: their groups carry ``betas``) or ``"sgd"``."""
    state = checkpoint.get("optimizer_state") or {}
    if "parts" in state:
        return "per_part"
    groups = state.get("param_groups") or [{}]
    return "adam" if "betas" in groups[0] else "sgd"
