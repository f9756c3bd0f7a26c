"""Every trainer the plugin ships, checked in-process on the shared planned dataset.

For each trainer: nnU-Net finds it by name (``get_trainer_from_args``, the lookup
``nnUNetv2_train`` uses, through ``nnUNet_extTrainer``), ``initialize()`` builds it on CPU, the
recipe is asserted (network and its options, optimiser, loss, deep supervision, schedule,
patch), one real training step runs and gives a finite loss, and the trained weights load into
the network that ``nnUNetv2_predict`` builds (deep supervision off), which then predicts a case
with nnU-Net's sliding window. ``test_nnunet_e2e.py`` runs nnU-Net's commands end to end for
the main trainer and one baseline.
"""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from nnunet_dyntransnet.network.attention import ATTENTIONS
from nnunet_dyntransnet.network.decoder_blocks import ConcatFusion, FeatureMix, WeightedSumFusion
from nnunet_dyntransnet.network import DynTransNet, network_defaults
from nnunet_dyntransnet.network.dyntransnet import selective_parts
from nnunet_dyntransnet.trainers import ABLATION_TRAINERS, BASELINE_TRAINERS

pytestmark = pytest.mark.slow  # needs the planned dataset (one nnUNetv2_plan_and_preprocess per test run)

FUSION = {"concat": ConcatFusion, "feature_mix": FeatureMix, "weighted_sum": WeightedSumFusion}
DYNTRANSNET = ["nnUNetTrainerDynTransNet", "nnUNetTrainerDynTransNet_Checkpointed",
               "nnUNetTrainerDynTransNet_SelectiveCheckpointed",
               *(c.__name__ for c in ABLATION_TRAINERS)]
NETWORK_CLASS = {"SegResNet": "SegResNet", "DynUNet": "DynUNet", "UNETR": "UNETR", "SwinUNETR": "SwinUNETR",
                 "VNet": "VNet", "AttentionUNet": "AttentionUnet", "DeepLabV3Plus": "DeepLabV3Plus"}
BASELINES_3D = [c.__name__ for c in BASELINE_TRAINERS if c.baseline != "DeepLabV3Plus"]


@pytest.fixture
def nnunet_in_process(tiny_dataset, tmp_path, monkeypatch):
    """nnU-Net's variables for this process; results go to a folder of this test's own."""
    from nnunet_dyntransnet.trainer_search_path import register

    for key, value in tiny_dataset.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("nnUNet_results", str(tmp_path / "results"))
    register()  # what the installed .pth does at every interpreter start
    return tiny_dataset


def _trainer(name: str, configuration: str = "3d_fullres"):
    from nnunetv2.run.run_training import get_trainer_from_args

    trainer = get_trainer_from_args("901", configuration, 0, name, "nnUNetPlans", device=torch.device("cpu"))
    trainer.initialize()
    return trainer


def _one_step(trainer, channels: int = 1) -> float:
    """A training step on a synthetic batch of the trainer's patch, labels 0-2 (deep-supervised targets if on):
    the loss it reports is the trainer's loss of the network's output, and the step moves the weights."""
    torch.manual_seed(0)
    patch = trainer.configuration_manager.patch_size
    target = torch.randint(0, 3, (2, 1, *patch)).float()
    if trainer.enable_deep_supervision:
        scales = trainer._get_deep_supervision_scales()
        target = [torch.nn.functional.interpolate(target, scale_factor=tuple(s), mode="nearest") for s in scales]
    data = torch.randn(2, channels, *patch)
    before = {name: p.detach().clone() for name, p in trainer.network.named_parameters()}
    torch.manual_seed(1)  # the same dropout masks in both forward passes (VNet's dropout)
    with torch.no_grad():
        expected = trainer.loss(trainer.network(data), target).item()
    torch.manual_seed(1)
    loss = trainer.train_step({"data": data, "target": target})["loss"]
    name = type(trainer).__name__
    assert np.isfinite(loss), f"{name}: loss {loss}"
    assert loss == pytest.approx(expected, rel=1e-4, abs=1e-5), f"{name}: the step's loss is not the trainer's loss"
    params = dict(trainer.network.named_parameters())
    trained = [n for n, p in params.items() if p.grad is not None]
    unmoved = [n for n in trained if torch.equal(params[n].detach(), before[n])]
    # every DynTransNet parameter trains (a detached D-MSA bias passed the 80% asked of the baselines, issue 27);
    # the baselines' libraries may carry parameters their forward pass does not use
    from nnunet_dyntransnet.network import DynTransNet

    share = 1.0 if isinstance(trainer.network, DynTransNet) else 0.8
    # output heads the loss does not read get no gradient: the lowest-resolution one, which nnU-Net's deep
    # supervision weighs 0, and without deep supervision (the _Paper recipe) all but the full-resolution one
    params = {n: p for n, p in params.items() if n in trained or not n.startswith("decoder.heads.")}
    assert not unmoved and len(trained) >= share * len(params), \
        f"{name}: {len(trained)} of {len(params)} weights got a gradient; unmoved: {unmoved[:3]}; " \
        f"none: {[n for n in params if n not in trained][:3]}"
    return loss


def _predicts_with_trained_weights(trainer, name: str) -> None:
    """The network nnUNetv2_predict builds (class method, deep supervision off) takes the trained weights and
    predicts a case larger than the patch through nnU-Net's sliding window, at the trainer's patch."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from nnunet_dyntransnet.trainers.dyntransnet import OPTIONS_KEY

    planned = _planned(trainer)  # nnU-Net's plans file, before any trainer touched the patch
    recorded = trainer.configuration_manager.configuration.get(OPTIONS_KEY)
    if recorded is not None:  # what the result folder's plans.json holds besides: the network the trainer built
        planned["configurations"][trainer.configuration_name][OPTIONS_KEY] = recorded
    plans_manager = PlansManager(planned)
    configuration = plans_manager.get_configuration(trainer.configuration_name)  # as the predictor gets it
    network = type(trainer).build_network_architecture(plans_manager, configuration, 1, 3, enable_deep_supervision=False)
    network.load_state_dict(trainer.network.state_dict())
    assert configuration.patch_size == trainer.configuration_manager.patch_size, f"{name}: prediction patch"
    predictor = nnUNetPredictor(tile_step_size=0.5, use_mirroring=False, device=torch.device("cpu"),
                                perform_everything_on_device=False, allow_tqdm=False)
    predictor.manual_initialization(network, plans_manager, configuration, None, trainer.dataset_json, name, None)
    case = [p + p // 2 for p in configuration.patch_size]
    if len(case) == 2:  # a 2D network predicts a volume slice by slice
        case = [2, *case]
    logits = predictor.predict_sliding_window_return_logits(torch.randn(1, *case))
    assert tuple(logits.shape) == (3, *case) and torch.isfinite(logits).all()


def _planned(trainer) -> dict:
    from batchgenerators.utilities.file_and_folder_operations import load_json

    return load_json(f"{trainer.preprocessed_dataset_folder_base}/{trainer.plans_manager.plans_name}.json")


@pytest.mark.parametrize("name", DYNTRANSNET)
def test_dyntransnet_trainers(nnunet_in_process, name):
    trainer = _trainer(name)
    net = trainer.network
    assert isinstance(net, DynTransNet)
    options = {**network_defaults(), **type(trainer).network_options}
    attn = [m for m in net.modules() if hasattr(m, "bias_proj")]
    assert attn and all(type(a) is ATTENTIONS[options["attention"]] for a in attn)
    assert all(type(f) is FUSION[options["fusion"]] for f in net.decoder.fuse)
    assert all(r.residual == options["residual_refine"] for r in net.decoder.refine)
    assert all((r.after_sum is not None) == options["rm_post_activation"] for r in net.decoder.refine)
    assert net.decoder.shortcut_from_decoder == (options["rm_shortcut"] == "decoder")
    assert net.encoder.stages[0].checkpoint_blocks == options.get("activation_checkpointing", False)
    parts = selective_parts(options["selective_checkpointing"])
    depth = options["selective_depth"] or len(net.encoder.stages)
    assert [s.selective_blocks for s in net.encoder.stages] == [
        "transformer" in parts and i < depth for i in range(len(net.encoder.stages))]
    assert (net.encoder.selective_stem, bool(net.decoder.selective_levels)) == ("stem" in parts, "decoder" in parts)
    # nnU-Net's own recipe (docs/network.md, "Defaults"): SGD 1e-2, Nesterov momentum 0.99, wd 3e-5, poly over
    # 1000 epochs, deep-supervised Dice + CE
    group = trainer.optimizer.param_groups[0]
    assert type(trainer.optimizer).__name__ == "SGD" and trainer.initial_lr == 1e-2
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (0.99, True, 3e-5)
    assert type(trainer.lr_scheduler).__name__ == "PolyLRScheduler"
    assert trainer.enable_deep_supervision and type(trainer.loss).__name__ == "DeepSupervisionWrapper"
    assert type(trainer.loss.loss).__name__ == "DC_and_CE_loss" and trainer.num_epochs == 1000
    _one_step(trainer)
    _predicts_with_trained_weights(trainer, name)


def test_paper_trainer_recipe_as_the_paper_states_it(nnunet_in_process):
    trainer = _trainer("nnUNetTrainerDynTransNet_Paper")
    assert isinstance(trainer.network, DynTransNet) and not trainer.network.decoder.deep_supervision
    assert not trainer.enable_deep_supervision
    assert type(trainer.loss).__name__ == "MemoryEfficientSoftDiceLoss", "Dice loss alone, one output"
    assert type(trainer.optimizer) is torch.optim.Adam and trainer.initial_lr == 1e-4
    assert trainer.optimizer.param_groups[0]["weight_decay"] == 0
    assert trainer.batch_size == 2 and trainer.num_epochs == 300
    _one_step(trainer)
    # an epoch is one pass over this fold's training cases: ceil(cases / 2) iterations
    trainer.on_train_start()
    try:
        train_cases, _ = trainer.do_split()
        assert trainer.num_iterations_per_epoch == math.ceil(len(train_cases) / 2) > 1
    finally:
        trainer.on_train_end()


@pytest.mark.parametrize("name", ["nnUNetTrainerDynTransNet", "nnUNetTrainerDynTransNet_Paper"])
def test_lowres_and_cascade_configurations(nnunet_in_process, name):
    """The shared dataset's plan has nnU-Net's 3d_lowres and 3d_cascade_fullres (conftest.py): both trainers build
    from them, the cascade's network takes the image and the previous stage's one-hot segmentation (1 + 2
    channels), and each trains a step. test_nnunet_e2e.py runs the cascade's commands end to end."""
    lowres = _trainer(name, "3d_lowres")
    assert list(lowres.network.patch_size) == list(lowres.configuration_manager.patch_size)
    assert lowres.configuration_manager.spacing != lowres.plans_manager.get_configuration("3d_fullres").spacing
    _one_step(lowres)
    cascade = _trainer(name, "3d_cascade_fullres")
    assert cascade.is_cascaded and cascade.num_input_channels == 3
    assert cascade.network.encoder.stem[0][0].in_channels == 3
    _one_step(cascade, channels=3)


@pytest.mark.parametrize("name", BASELINES_3D)
def test_baseline_trainers_3d(nnunet_in_process, name):
    from nnunet_dyntransnet.baseline_networks import BASELINES

    trainer = _trainer(name)
    spec = BASELINES[type(trainer).baseline]
    planned = _planned(trainer)["configurations"]["3d_fullres"]["patch_size"]  # [8, 28, 24]
    used = trainer.configuration_manager.patch_size
    multiple = spec.multiple(trainer.configuration_manager)
    assert all(u % m == 0 and u >= p for u, m, p in zip(used, multiple, planned))
    assert math.prod(u // m for u, m in zip(used, multiple)) >= spec.min_cells
    assert all(u - p < m for u, m, p in zip(used, multiple, planned)) or spec.min_cells > 1, "rounded up, no more"
    assert type(trainer.network).__name__ == NETWORK_CLASS[type(trainer).baseline]
    assert not trainer.enable_deep_supervision and type(trainer.loss).__name__ == "DC_and_CE_loss"
    assert type(trainer.optimizer).__name__ == "AdamW" and trainer.initial_lr == 3e-4
    if name == "nnUNetTrainerSwinUNETR":
        return  # trained and predicted through nnU-Net's commands in test_nnunet_e2e.py (40 s more here)
    _one_step(trainer)
    _predicts_with_trained_weights(trainer, name)


def test_the_recipe_screens_adam_row_changes_only_the_optimizer(nnunet_in_process):
    """The recipe screen's paper row: Adam at the paper's 1e-4 without weight decay, and everything else the main
    trainer's (network, deep-supervised Dice + CE, polynomial decay, nnU-Net's epochs)."""
    trainer = _trainer("nnUNetTrainerDynTransNet_Adam1e4_NoMirroring")
    assert type(trainer.optimizer) is torch.optim.Adam and trainer.initial_lr == 1e-4
    assert trainer.optimizer.param_groups[0]["weight_decay"] == 0
    assert type(trainer.lr_scheduler).__name__ == "PolyLRScheduler" and trainer.num_epochs == 1000
    assert trainer.enable_deep_supervision and type(trainer.loss.loss).__name__ == "DC_and_CE_loss"
    assert isinstance(trainer.network, DynTransNet) and not type(trainer).network_options, "the default network"
    _one_step(trainer)


def test_the_learning_rate_screens_row_doubles_only_the_learning_rate(nnunet_in_process):
    """``_LR2e2`` (trainers/screens.py): nnU-Net's SGD, momentum, weight decay and polynomial decay at 2e-2, the
    main trainer's network; the decay starts from 2e-2 and falls as nnU-Net's does."""
    trainer = _trainer("nnUNetTrainerDynTransNet_LR2e2_NoMirroring")
    group = trainer.optimizer.param_groups[0]
    assert type(trainer.optimizer).__name__ == "SGD" and trainer.initial_lr == group["lr"] == 2e-2
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (0.99, True, 3e-5)
    trainer.lr_scheduler.step(500)
    assert group["lr"] == pytest.approx(2e-2 * (1 - 500 / 1000) ** 0.9)
    assert isinstance(trainer.network, DynTransNet) and not type(trainer).network_options, "the default network"


def test_the_adamw_recipe_stays_reachable_and_its_folds_are_not_continued_with_sgd(nnunet_in_process):
    """The recipe before 2026-12 is nnUNetTrainerDynTransNet_AdamW (the same network); --c of an AdamW fold under
    the SGD trainer is refused, naming the trainer that continues it."""
    from nnunet_dyntransnet.trainers.refusal import TrainingRefused

    adamw = _trainer("nnUNetTrainerDynTransNet_AdamW")
    assert type(adamw.optimizer).__name__ == "AdamW" and adamw.initial_lr == 3e-4
    assert adamw.optimizer.param_groups[0]["weight_decay"] == 5e-2 and adamw.enable_deep_supervision
    _one_step(adamw)
    checkpoint = {"optimizer_state": adamw.optimizer.state_dict(), "init_args": {}}
    sgd = _trainer("nnUNetTrainerDynTransNet")
    with pytest.raises(TrainingRefused, match="nnUNetTrainerDynTransNet_AdamW"):
        sgd.check_resumable(checkpoint, "fold_0/checkpoint_latest.pth")


def test_the_warmup_trainer_ramps_nnunets_sgd_over_a_tenth_of_the_epochs_and_continues(nnunet_in_process, tmp_path,
                                                                                          monkeypatch):
    """nnUNetTrainerDynTransNet_Warmup: the main trainer's network and nnU-Net's SGD, its rate raised linearly over
    the first tenth of the epochs (here 2 of 20), then the polynomial decay from the full rate; nnU-Net's checkpoint
    of it loads back for --c (nnUNetTrainer_warmup's own loader rejects it under torch's weights-only default)."""
    from nnunetv2.training.lr_scheduler.warmup import Lin_incr_LRScheduler, PolyLRScheduler_offset

    monkeypatch.setenv("DYNTRANSNET_TRAIN_EPOCHS", "20")
    trainer = _trainer("nnUNetTrainerDynTransNet_Warmup")
    assert isinstance(trainer.network, DynTransNet) and trainer.enable_deep_supervision
    assert (trainer.num_epochs, trainer.warmup_duration_whole_net) == (20, 2)
    trainer.on_train_epoch_start()
    sgd = trainer.optimizer
    assert type(sgd) is torch.optim.SGD and isinstance(trainer.lr_scheduler, Lin_incr_LRScheduler)
    assert (sgd.defaults["momentum"], sgd.defaults["nesterov"], sgd.defaults["weight_decay"]) == (0.99, True, 3e-5)
    assert sgd.param_groups[0]["lr"] == pytest.approx(1e-2 / 2)
    _one_step(trainer)
    trainer.current_epoch = 2
    trainer.on_train_epoch_start()
    assert trainer.optimizer is sgd and isinstance(trainer.lr_scheduler, PolyLRScheduler_offset)  # momentum kept
    assert sgd.param_groups[0]["lr"] == pytest.approx(1e-2)
    trainer._best_ema = np.float64(0.5)  # as an epoch's end leaves it: a numpy scalar, which weights-only rejects
    trainer.save_checkpoint(str(tmp_path / "checkpoint_latest.pth"))
    resumed = _trainer("nnUNetTrainerDynTransNet_Warmup")
    resumed.load_checkpoint(str(tmp_path / "checkpoint_latest.pth"))
    assert resumed.current_epoch == 3 and isinstance(resumed.lr_scheduler, PolyLRScheduler_offset)
    assert resumed._best_ema == 0.5
    momentum = [sgd.state[p]["momentum_buffer"] for p in sgd.param_groups[0]["params"][:3]]
    assert all(torch.equal(m, resumed.optimizer.state[p]["momentum_buffer"])
               for m, p in zip(momentum, resumed.optimizer.param_groups[0]["params"][:3]))


def test_the_optimizer_per_part_trains_the_transformer_with_adamw_and_the_rest_with_sgd(nnunet_in_process, tmp_path):
    """nnUNetTrainerDynTransNet_PerPart: the main trainer's network and schedule; its transformer stages under the
    transformer recipe's AdamW, everything else under nnU-Net's SGD, each decaying from its own rate; a step moves
    both parts; nnU-Net's checkpoint of it loads back (both parts' state); --c between it and the single-optimizer
    trainers is refused both ways."""
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    from nnunet_dyntransnet.network.transformer import TransformerStage
    from nnunet_dyntransnet.trainers.optimizer_per_part import OptimizerPerPart
    from nnunet_dyntransnet.trainers.refusal import TrainingRefused

    trainer = _trainer("nnUNetTrainerDynTransNet_PerPart")
    assert isinstance(trainer.optimizer, OptimizerPerPart) and trainer.enable_deep_supervision
    sgd, adamw = trainer.optimizer.parts["convolutions"], trainer.optimizer.parts["transformer"]
    assert type(sgd) is torch.optim.SGD and sgd.param_groups[0]["lr"] == 1e-2
    # the convolutions' SGD is nnU-Net's, setting for setting
    nnunet_sgd, _ = nnUNetTrainer.configure_optimizers(trainer)
    assert {k: v for k, v in sgd.param_groups[0].items() if k not in ("params", "initial_lr")} == \
        {k: v for k, v in nnunet_sgd.param_groups[0].items() if k not in ("params", "initial_lr")}
    assert (sgd.defaults["momentum"], sgd.defaults["nesterov"], sgd.defaults["weight_decay"]) == (0.99, True, 3e-5)
    assert type(adamw) is torch.optim.AdamW and adamw.param_groups[0]["lr"] == 3e-4
    assert adamw.param_groups[0]["weight_decay"] == 5e-2 and adamw.param_groups[0]["betas"] == (0.9, 0.98)
    stages = {id(p) for m in trainer.network.modules() if isinstance(m, TransformerStage) for p in m.parameters()}
    assert {id(p) for p in adamw.param_groups[0]["params"]} == stages
    assert type(trainer.lr_scheduler).__name__ == "PolyLRSchedulerPerGroup" and trainer.num_epochs == 1000
    trainer.lr_scheduler.step(500)
    assert [g["lr"] for g in trainer.optimizer.param_groups] == pytest.approx([1e-2 * 0.5 ** 0.9, 3e-4 * 0.5 ** 0.9])
    before = {id(p): p.detach().clone() for group in trainer.optimizer.param_groups for p in group["params"][:1]}
    _one_step(trainer)
    assert all(not torch.equal(before[id(g["params"][0])], g["params"][0]) for g in trainer.optimizer.param_groups)
    trainer.save_checkpoint(str(tmp_path / "checkpoint_latest.pth"))
    resumed = _trainer("nnUNetTrainerDynTransNet_PerPart")
    resumed.load_checkpoint(str(tmp_path / "checkpoint_latest.pth"))  # nnU-Net's --c, through ChecksResume
    moments = [adamw.state[p]["exp_avg"] for p in adamw.param_groups[0]["params"]]
    assert all(torch.equal(a, resumed.optimizer.parts["transformer"].state[p]["exp_avg"]) for a, p in
               zip(moments, resumed.optimizer.parts["transformer"].param_groups[0]["params"]))
    assert [g["initial_lr"] for g in resumed.optimizer.param_groups] == [1e-2, 3e-4]
    per_part = {"optimizer_state": trainer.optimizer.state_dict(), "init_args": {}}
    with pytest.raises(TrainingRefused, match=r"an optimizer per part \(SGD and AdamW\); nnUNetTrainerDynTransNet "
                                               r"trains with SGD"):
        _trainer("nnUNetTrainerDynTransNet").check_resumable(per_part, "fold_0/checkpoint_latest.pth")
    single = {"optimizer_state": torch.optim.SGD(trainer.network.parameters(), 1e-2).state_dict(), "init_args": {}}
    with pytest.raises(TrainingRefused, match=r"was trained with SGD; nnUNetTrainerDynTransNet_PerPart trains with an "
                                               r"optimizer per part"):
        trainer.check_resumable(single, "fold_0/checkpoint_latest.pth")


def test_the_deep_supervision_screens_row_trains_on_the_full_resolution_head_alone(nnunet_in_process):
    """``_NoDS``: the main trainer's network and recipe, the loss on the last head only (no deep-supervision
    wrapper), the network built without its lower heads' outputs."""
    trainer = _trainer("nnUNetTrainerDynTransNet_NoDS_NoMirroring")
    assert not trainer.enable_deep_supervision and type(trainer.loss).__name__ == "DC_and_CE_loss"
    assert isinstance(trainer.network, DynTransNet) and not trainer.network.decoder.deep_supervision
    assert type(trainer.optimizer) is torch.optim.SGD
    _one_step(trainer)


@pytest.mark.parametrize("name", ["nnUNetTrainerUNETR_lr1e4", "nnUNetTrainerSwinUNETR_lr1e4"])
def test_lr1e4_variants_change_only_the_learning_rate(nnunet_in_process, name):
    """The same network and trainer as above (trained there); only AdamW's learning rate differs."""
    trainer = _trainer(name)
    parent = type(trainer).__mro__[2]  # (_Lr1e4, the baseline trainer)
    assert parent.__name__ == name[: -len("_lr1e4")] and type(trainer).baseline == parent.baseline
    assert type(trainer.optimizer).__name__ == "AdamW" and trainer.initial_lr == 1e-4
    assert trainer.optimizer.param_groups[0]["weight_decay"] == 5e-2


def test_deeplab_trains_2d_and_refuses_3d(nnunet_in_process):
    from nnunet_dyntransnet.trainers.refusal import TrainingRefused

    trainer = _trainer("nnUNetTrainerDeepLabV3Plus", "2d")
    assert type(trainer.network).__name__ == "DeepLabV3Plus"
    assert all(p % 16 == 0 for p in trainer.configuration_manager.patch_size)
    _one_step(trainer)
    _predicts_with_trained_weights(trainer, "nnUNetTrainerDeepLabV3Plus")
    with pytest.raises(TrainingRefused, match=r"DeepLabV3\+ \(segmentation-models-pytorch\) is a 2D network "
                                               r"and cannot train the 3D configuration 3d_fullres; train it "
                                               r"on '2d' instead"):
        _trainer("nnUNetTrainerDeepLabV3Plus", "3d_fullres")


def test_a_3d_baseline_builds_from_the_2d_plan(nnunet_in_process):
    trainer = _trainer("nnUNetTrainerAttentionUNet", "2d")
    assert len(trainer.configuration_manager.patch_size) == 2
    _one_step(trainer)


def test_fit_to_gpu_in_the_trainer(nnunet_in_process, monkeypatch):
    """The decision ``initialize`` makes on CUDA, with a stubbed free-memory figure: off when the plan fits,
    on when it fits only with checkpointing, a stop naming the planner when it does not fit at all."""
    from nnunet_dyntransnet.network.gpu_fit import DoesNotFitError, training_bytes

    monkeypatch.delenv("DYNTRANSNET_CHECKPOINTING", raising=False)
    trainer = _trainer("nnUNetTrainerDynTransNet")
    net, batch = trainer.network, trainer.batch_size
    plain, checkpointed = training_bytes(net, batch, False), training_bytes(net, batch, True)
    assert checkpointed < plain
    trainer.fit_to_gpu(int(plain / 0.85))
    assert not net.encoder.stages[0].checkpoint_blocks
    trainer.fit_to_gpu(int(checkpointed / 0.85))
    assert net.encoder.stages[0].checkpoint_blocks and net.decoder.checkpoint_levels == {0}
    with pytest.raises(DoesNotFitError, match="dyntransnet_plan_and_preprocess -d 901 -gpu_memory_target 1"):
        trainer.fit_to_gpu(checkpointed // 2)
    trainer.checkpointing_mode = "off"  # what DYNTRANSNET_CHECKPOINTING=off gives when the trainer is created
    trainer.fit_to_gpu(checkpointed // 2)
    assert not net.encoder.stages[0].checkpoint_blocks
    _one_step(trainer)  # the switch holds for training


# ---------------------------------------------------------------- issue 18, cases 14 and 15: refusals before any write

@pytest.mark.parametrize("trainer, env, message", [
    ("nnUNetTrainerDeepLabV3Plus", {}, "cannot train the 3D configuration 3d_fullres; train it on '2d' instead"),
    ("nnUNetTrainerDynTransNet", {"DYNTRANSNET_TRAIN_MINUTES": "0"}, "DYNTRANSNET_TRAIN_MINUTES='0'"),
    ("nnUNetTrainerDynTransNet", {"DYNTRANSNET_TRAIN_MINUTES": "abc"}, "as a positive number"),
    ("nnUNetTrainerSegResNet", {"DYNTRANSNET_TRAIN_MINUTES": "nan"}, "as a positive number"),
    ("nnUNetTrainerDynTransNet", {"DYNTRANSNET_CHECKPOINTING": "banana"}, "use auto"),
])
def test_refused_before_nnunet_creates_the_fold_folder(nnunet_in_process, tmp_path, monkeypatch, trainer, env,
                                                       message):
    """A refusal is a message and exit status (SystemExit: nnUNetv2_train prints it without a traceback), and no
    fold folder or training log is left behind."""
    from nnunet_dyntransnet.trainers.refusal import TrainingRefused

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(TrainingRefused) as refused:
        _trainer(trainer)
    assert isinstance(refused.value, SystemExit) and message in str(refused.value.code), refused.value.code
    assert not (tmp_path / "results").exists(), "nothing written"


@pytest.mark.parametrize("mode, expected", [("on", True), ("off", False)])
def test_checkpointing_variable_is_honoured_on_cpu(nnunet_in_process, monkeypatch, mode, expected):
    """Case 15: DYNTRANSNET_CHECKPOINTING=on was silently ignored on CPU."""
    monkeypatch.setenv("DYNTRANSNET_CHECKPOINTING", mode)
    trainer = _trainer("nnUNetTrainerDynTransNet")
    assert trainer.network.activation_checkpointing is expected
    log = open(trainer.log_file).read()
    assert f"activation checkpointing {mode} (DYNTRANSNET_CHECKPOINTING={mode}" in log


def test_continuing_a_fold_of_another_network_is_refused(nnunet_in_process, tmp_path):
    """--c rebuilds the network from today's options; a checkpoint of another network (version 0.1's, which recorded
    none) is refused with a message instead of nnU-Net's state-dict mismatch."""
    from nnunet_dyntransnet.trainers.dyntransnet import OPTIONS_KEY
    from nnunet_dyntransnet.trainers.refusal import TrainingRefused

    trainer = _trainer("nnUNetTrainerDynTransNet")
    plans = json.loads(json.dumps(trainer.plans_manager.plans))
    current = tmp_path / "current.pth"
    torch.save({"init_args": {"plans": plans}}, current)
    del plans["configurations"]["3d_fullres"][OPTIONS_KEY]
    old = tmp_path / "old.pth"
    torch.save({"init_args": {"plans": plans}}, old)
    own_log = Path(trainer.log_file)
    assert own_log.is_file()  # nnU-Net's __init__ started this run's log
    with pytest.raises(TrainingRefused, match="version 0.1's network"):
        trainer.load_checkpoint(str(old))
    assert not own_log.exists()  # a refused --c leaves no stub training log (issue 28, case 14)
    again = _trainer("nnUNetTrainerDynTransNet")
    earlier = Path(again.log_file)
    again._log_was_there = True  # as if another run of the same second had written this log first
    with pytest.raises(TrainingRefused):
        again.load_checkpoint(str(old))
    assert earlier.is_file()  # never another run's log
    cut = tmp_path / "checkpoint_latest.pth"  # case 12: a cut-off checkpoint gave a traceback naming no file
    cut.write_bytes(current.read_bytes()[:100])
    with pytest.raises(TrainingRefused, match=f"{cut} \\(100 bytes\\) cannot be read as a checkpoint.*Move it aside"):
        again.load_checkpoint(str(cut))
    with pytest.raises(KeyError):  # past the check: nnU-Net's own loading of this stand-in fails on its keys
        trainer.load_checkpoint(str(current))
