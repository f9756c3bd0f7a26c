"""The optimizer per part (``trainers/optimizer_per_part.py``): stepping it is stepping each part's own optimizer,
its schedule decays each group from its own rate, and its checkpoints resume the same training."""
import copy

import pytest
import torch
from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler
from torch import nn

from nnunet_dyntransnet.network import DynTransNet
from nnunet_dyntransnet.network.transformer import TransformerStage
from nnunet_dyntransnet.trainers.optimizer_per_part import (OptimizerPerPart, PolyLRSchedulerPerGroup, optimizer_kind,
                                                            split_parameters)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.GELU(), nn.Linear(5, 3))


def _parts(model: nn.Module) -> dict:
    """SGD as nnU-Net's for the first layer, AdamW as the transformer recipe's for the last."""
    return {"convolutions": torch.optim.SGD(model[0].parameters(), 1e-2, momentum=0.99, nesterov=True,
                                            weight_decay=3e-5),
            "transformer": torch.optim.AdamW(model[2].parameters(), 3e-4, betas=(0.9, 0.98), weight_decay=5e-2)}


def _train(model: nn.Module, optimizer, scheduler, epochs: range) -> None:
    for epoch in epochs:
        scheduler.step(epoch)
        torch.manual_seed(100 + epoch)
        loss = model(torch.randn(4, 6)).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def test_a_step_is_each_parts_own_optimizers_step():
    """The same training with the parts' optimizers stepped by hand and through OptimizerPerPart: equal weights."""
    by_hand, joint = _model(), _model()
    hand_parts = _parts(by_hand)
    joint_optimizer = OptimizerPerPart(_parts(joint))
    for step in range(5):
        torch.manual_seed(step)
        x = torch.randn(4, 6)
        for model in (by_hand, joint):
            model(x).square().mean().backward()
        for optimizer in hand_parts.values():
            optimizer.step()
            optimizer.zero_grad()
        joint_optimizer.step()
        joint_optimizer.zero_grad()
    for a, b in zip(by_hand.parameters(), joint.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert all(p.grad is None for p in joint.parameters()), "zero_grad reached every part"


def test_its_groups_are_the_parts_groups_so_a_schedule_sets_each_parts_rate():
    model = _model()
    parts = _parts(model)
    optimizer = OptimizerPerPart(parts)
    assert optimizer.param_groups[0] is parts["convolutions"].param_groups[0]
    assert optimizer.param_groups[1] is parts["transformer"].param_groups[0]
    scheduler = PolyLRSchedulerPerGroup(optimizer, 1e-2, 10)
    assert isinstance(scheduler, PolyLRScheduler), "the wall-clock budget resizes max_steps of nnU-Net's scheduler"
    scheduler.step(4)
    factor = (1 - 4 / 10) ** 0.9
    assert parts["convolutions"].param_groups[0]["lr"] == pytest.approx(1e-2 * factor)
    assert parts["transformer"].param_groups[0]["lr"] == pytest.approx(3e-4 * factor)
    scheduler.max_steps = 20  # what the budget does when it knows how many epochs fit
    scheduler.step(4)
    assert scheduler.get_last_lr() == pytest.approx([1e-2 * 0.8 ** 0.9, 3e-4 * 0.8 ** 0.9])


def test_a_checkpoint_resumes_the_same_training():
    """Four epochs straight, and two, state_dict, a new optimizer and schedule that load it, two more: the same
    weights (the AdamW moments and the SGD momentum came back, and each group's initial rate with them)."""
    straight = _model()
    optimizer = OptimizerPerPart(_parts(straight))
    _train(straight, optimizer, PolyLRSchedulerPerGroup(optimizer, 1e-2, 4), range(4))

    first = _model()
    optimizer = OptimizerPerPart(_parts(first))
    _train(first, optimizer, PolyLRSchedulerPerGroup(optimizer, 1e-2, 4), range(2))
    saved = copy.deepcopy(optimizer.state_dict())
    assert set(saved) == {"parts"} and optimizer_kind({"optimizer_state": saved}) == "per_part"
    resumed = OptimizerPerPart(_parts(first))
    scheduler = PolyLRSchedulerPerGroup(resumed, 1e-2, 4)  # built before loading, as nnU-Net's initialize does
    resumed.load_state_dict(saved)
    assert resumed.param_groups[0] is resumed.parts["convolutions"].param_groups[0], "still shared after loading"
    assert [g["initial_lr"] for g in resumed.param_groups] == [1e-2, 3e-4]
    _train(first, resumed, scheduler, range(2, 4))
    for a, b in zip(straight.parameters(), first.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_it_refuses_a_single_optimizers_state_and_groups_added_behind_its_parts():
    model = _model()
    optimizer = OptimizerPerPart(_parts(model))
    single = torch.optim.SGD(model.parameters(), 1e-2)
    assert optimizer_kind({"optimizer_state": single.state_dict()}) == "sgd"
    assert optimizer_kind({"optimizer_state": torch.optim.AdamW(model.parameters()).state_dict()}) == "adam"
    with pytest.raises(ValueError, match=r"parts \['convolutions', 'transformer'\].*none \(a single optimizer"):
        optimizer.load_state_dict(single.state_dict())
    with pytest.raises(TypeError, match="add the group to one of them"):
        optimizer.add_param_group({"params": [nn.Parameter(torch.zeros(1))]})


def test_amp_grad_scaler_steps_it():
    """nnU-Net steps through a GradScaler on CUDA; the scaler unscales every part's gradients and steps it."""
    model = _model()
    optimizer = OptimizerPerPart(_parts(model))
    before = [p.detach().clone() for p in model.parameters()]
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 8)
    scaler.scale(model(torch.randn(4, 6)).square().mean()).backward()
    scaler.unscale_(optimizer)
    assert all(p.grad.abs().max() < 10 for p in model.parameters()), "unscaled in both parts"
    scaler.step(optimizer)
    scaler.update()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_the_transformer_part_is_exactly_the_transformer_stages():
    """On DynTransNet: every trainable parameter in one part, once; the transformer part is the encoder's
    transformer stages' (projections, D-MSA blocks with their dynamic bias, norms), the rest the convolutions'."""
    network = DynTransNet(1, 3, (16, 32, 32), (8, 16, 32, 64), [(1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2)])
    transformer, rest = split_parameters(network, (TransformerStage,))
    names = {id(p): n for n, p in network.named_parameters()}
    stage_names = {n for n, m in network.named_modules() if isinstance(m, TransformerStage)}
    assert stage_names, "the network has transformer stages"
    assert {names[id(p)] for p in transformer} == {n for n in map(names.get, map(id, network.parameters()))
                                                   if any(n.startswith(s + ".") for s in stage_names)}
    assert len(transformer) + len(rest) == len(list(network.parameters()))
    in_transformer = {names[id(p)].split(".")[-2] for p in transformer}
    assert {"qkv", "bias_proj", "proj", "fc1", "fc2"} <= in_transformer, "D-MSA, its bias and the MLP: AdamW's"
    assert not any(names[id(p)].startswith("decoder") for p in transformer), "the decoder stays with SGD"
