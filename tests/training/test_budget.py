"""The wall-clock budget (``trainers/budget.py``): how many epochs fit, and the mixin's stop and schedule on a
stand-in trainer with a fake clock (nnU-Net's loop, logger and schedulers; no data, no network)."""
import pytest
import torch
from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler
from nnunetv2.training.lr_scheduler.warmup import Lin_incr_LRScheduler, PolyLRScheduler_offset

from nnunet_dyntransnet.trainers.budget import WallClockBudget, budget_minutes, epochs_that_fit


def test_epochs_that_fit():
    assert epochs_that_fit([30, 20, 20], 100) == 4  # 70 s spent, one more 20-s epoch fits
    assert epochs_that_fit([30], 100) == 3  # one epoch: its own duration predicts the next
    assert epochs_that_fit([30, 20, 20], 60) == 3  # over budget: never fewer than done
    with pytest.raises(ValueError):
        epochs_that_fit([], 10)


@pytest.mark.parametrize("raw", ["0", "-5", "ten", "nan", "inf"])
def test_budget_refuses_what_is_not_a_positive_number(monkeypatch, raw):
    monkeypatch.setenv("DYNTRANSNET_TRAIN_MINUTES", raw)
    with pytest.raises(ValueError, match=f"DYNTRANSNET_TRAIN_MINUTES='{raw}'.*positive number"):
        budget_minutes()


class _Logger:
    def __init__(self):
        self.values = {"epoch_start_timestamps": [], "epoch_end_timestamps": []}

    def get_value(self, key, step):
        return self.values[key]


class _StandIn:
    """nnUNetTrainer's loop and hooks as far as the budget touches them; each epoch takes ``epoch_s`` on a fake clock."""

    def __init__(self, plans, configuration, fold, dataset_json, device):
        self.num_epochs, self.num_iterations_per_epoch, self.num_val_iterations_per_epoch = 1000, 250, 50
        self.current_epoch, self.clock, self.epoch_s, self.lines, self.ended = 0, 0.0, [12.0] + [10.0] * 999, [], False
        self.logger = _Logger()
        self.optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
        self.lr_scheduler = PolyLRScheduler(self.optimizer, 0.01, self.num_epochs)
        self.lrs = []

    def print_to_log_file(self, *args):
        self.lines.append(" ".join(map(str, args)))

    def on_train_start(self):
        pass

    def on_epoch_end(self):
        self.logger.values["epoch_end_timestamps"].append(self.clock)
        self.current_epoch += 1

    def on_train_end(self):
        self.ended = True

    def run_training(self):
        self.on_train_start()
        for epoch in range(self.current_epoch, self.num_epochs):
            self.lr_scheduler.step(self.current_epoch)
            self.lrs.append(self.optimizer.param_groups[0]["lr"])
            self.logger.values["epoch_start_timestamps"].append(self.clock)
            self.clock += self.epoch_s[epoch]
            self.on_epoch_end()
        self.on_train_end()


class _Budgeted(WallClockBudget, _StandIn):
    pass


def test_stops_when_the_next_epoch_does_not_fit_and_the_schedule_ends_there(monkeypatch):
    monkeypatch.setenv("DYNTRANSNET_TRAIN_MINUTES", "1")  # 60 s: 12 s, then 10-s epochs: 5 epochs (52 s)
    trainer = _Budgeted({}, "3d_fullres", 0, {}, torch.device("cpu"))
    assert (trainer.num_iterations_per_epoch, trainer.num_val_iterations_per_epoch) == (50, 10)
    trainer.run_training()
    assert trainer.current_epoch == 5 and trainer.ended
    assert trainer.lr_scheduler.max_steps == 5 and trainer.num_epochs == 5
    assert trainer.lrs[-1] > 0 and trainer.lrs == sorted(trainer.lrs, reverse=True)
    assert "training ends after 5 epochs" in trainer.lines[-1]


def test_warm_up_shortened_to_a_tenth_of_the_epochs_that_fit(monkeypatch):
    monkeypatch.setenv("DYNTRANSNET_TRAIN_MINUTES", "5")  # 300 s: 30 epochs of 10 s
    trainer = _Budgeted({}, "3d_fullres", 0, {}, torch.device("cpu"))
    trainer.warmup_duration_whole_net, trainer.training_stage = 50, "warmup_all"
    trainer.lr_scheduler = Lin_incr_LRScheduler(trainer.optimizer, 0.01, 50)
    trainer.logger.values["epoch_start_timestamps"].append(0.0)
    trainer.clock = 10.0
    trainer.on_train_start()
    trainer.on_epoch_end()
    assert trainer.warmup_duration_whole_net == 3 and trainer.lr_scheduler.max_steps == 3
    assert trainer.num_epochs == 30  # what the decay after the warm-up is built over
    trainer.lr_scheduler = PolyLRScheduler_offset(trainer.optimizer, 0.01, trainer.num_epochs, 3)
    trainer._fit_schedule(25)
    assert trainer.lr_scheduler.max_steps == 22


def test_unset_changes_nothing(monkeypatch):
    monkeypatch.delenv("DYNTRANSNET_TRAIN_MINUTES", raising=False)
    trainer = _Budgeted({}, "3d_fullres", 0, {}, torch.device("cpu"))
    trainer.epoch_s = [1.0] * 1000
    trainer.num_epochs = 7
    trainer.run_training()
    assert trainer.current_epoch == 7 and trainer.num_iterations_per_epoch == 250


def test_ddp_workers_follow_worker_0(monkeypatch):
    """Under DDP every worker takes worker 0's epoch count (a broadcast), so all stop after the same epoch."""
    import torch.distributed as dist

    def broadcast(tensor, src):  # worker 0 counted 3 epochs
        assert src == 0
        tensor.fill_(3)

    monkeypatch.setattr(dist, "broadcast", broadcast)
    monkeypatch.setenv("DYNTRANSNET_TRAIN_MINUTES", "10")  # this worker alone would fit 59 epochs
    trainer = _Budgeted({}, "3d_fullres", 0, {}, torch.device("cpu"))
    trainer.is_ddp, trainer.device = True, torch.device("cpu")
    trainer.run_training()
    assert trainer.current_epoch == 3 and trainer.lr_scheduler.max_steps == 3


def test_continuing_a_spent_budget_trains_nothing_more(monkeypatch):
    """``--c`` after the budget ran out: nnU-Net's logger brings back the epochs' times; no further epoch runs."""
    monkeypatch.setenv("DYNTRANSNET_TRAIN_MINUTES", "1")
    first = _Budgeted({}, "3d_fullres", 0, {}, torch.device("cpu"))
    first.run_training()
    again = _Budgeted({}, "3d_fullres", 0, {}, torch.device("cpu"))
    again.logger, again.current_epoch, again.clock = first.logger, first.current_epoch, first.clock
    again.run_training()
    assert again.current_epoch == 5 and again.ended and "nothing more to train" in again.lines[-1]


def test_the_first_epoch_ramps_towards_a_tenth_of_the_steps_that_fit():
    """Issue 18, case 20: under a budget the first epoch ran at a hundredth of the learning rate (nnU-Net's warm-up
    moves once an epoch), so a budget that fits one epoch trained at 2e-5 throughout."""
    from nnunet_dyntransnet.trainers.budget import first_epoch_warmup_factor

    assert first_epoch_warmup_factor(4, 3.0, 600.0, 50) == pytest.approx(5 / 60)  # 1 s a step: 600 fit, 60 warm up
    assert first_epoch_warmup_factor(49, 48.0, 60.0, 50) == 1.0  # 60 steps fit: the ramp ends within the epoch
    factors = [first_epoch_warmup_factor(i, max(0.0, i - 1.0), 60.0, 50) for i in range(50)]
    assert factors == sorted(factors) and factors[-1] == 1.0, "rises, and reaches the full rate"
    assert first_epoch_warmup_factor(0, 0.0, 60.0, 50) == pytest.approx(1 / 500), "before the speed is known: small"


def test_the_budget_is_kept_in_checkpoints_and_continued_only_under_it(monkeypatch, tmp_path):
    """Issue 20: DYNTRANSNET_TRAIN_MINUTES changed a training without a trace; --c under another budget is refused."""
    from nnunet_dyntransnet.trainers.refusal import TrainingRefused

    class _Saving(_Budgeted):
        def save_checkpoint(self, filename):  # the mixin's, over a stand-in for nnU-Net's torch.save call
            super().save_checkpoint(filename)

    def nnunet_save(self, filename):
        torch.save({"network_weights": {}, "current_epoch": 1}, filename)

    def nnunet_load(self, filename):
        self.loaded = filename

    monkeypatch.setattr(_StandIn, "save_checkpoint", nnunet_save, raising=False)
    monkeypatch.setattr(_StandIn, "load_checkpoint", nnunet_load, raising=False)
    monkeypatch.setenv("DYNTRANSNET_TRAIN_MINUTES", "8")
    trainer = _Saving({}, "3d_fullres", 0, {}, torch.device("cpu"))
    trainer.save_checkpoint(str(tmp_path / "c.pth"))
    saved = torch.load(tmp_path / "c.pth", weights_only=False)
    assert saved["dyntransnet_recipe"] == {"train_minutes": 8.0} and "network_weights" in saved
    assert torch.save.__name__ == "save" and torch.save.__module__.startswith("torch"), "torch.save is restored"
    trainer.load_checkpoint(str(tmp_path / "c.pth"))
    assert trainer.loaded == str(tmp_path / "c.pth")
    monkeypatch.setenv("DYNTRANSNET_TRAIN_MINUTES", "20")
    again = _Saving({}, "3d_fullres", 0, {}, torch.device("cpu"))
    with pytest.raises(TrainingRefused, match="DYNTRANSNET_TRAIN_MINUTES 8, and it is 20 now"):
        again.load_checkpoint(str(tmp_path / "c.pth"))


def test_a_fixed_number_of_epochs_for_the_screens(monkeypatch):
    """DYNTRANSNET_TRAIN_EPOCHS=N: N epochs of 50 steps, the warm-up a tenth of them, whatever the clock says."""
    from nnunet_dyntransnet.trainers.budget import fixed_epochs

    monkeypatch.delenv("DYNTRANSNET_TRAIN_MINUTES", raising=False)
    monkeypatch.setenv("DYNTRANSNET_TRAIN_EPOCHS", "16")

    class _WithWarmup(_StandIn):
        def __init__(self, *args):
            super().__init__(*args)
            self.warmup_duration_whole_net = 50

    class _Fixed(WallClockBudget, _WithWarmup):
        pass

    trainer = _Fixed({}, "3d_fullres", 0, {}, torch.device("cpu"))
    assert (trainer.num_epochs, trainer.num_iterations_per_epoch, trainer.warmup_duration_whole_net) == (16, 50, 1)
    trainer.epoch_s = [1e6] * 1000  # a clock that says nothing fits: the epochs are what the variable says
    trainer.run_training()
    assert trainer.current_epoch == 16 and trainer.environment_recipe()["train_epochs"] == 16
    for raw in ("0", "-1", "1.5", "ten", "２"):
        monkeypatch.setenv("DYNTRANSNET_TRAIN_EPOCHS", raw)
        with pytest.raises(ValueError, match="positive integer"):
            fixed_epochs()
    monkeypatch.setenv("DYNTRANSNET_TRAIN_EPOCHS", "4")
    monkeypatch.setenv("DYNTRANSNET_TRAIN_MINUTES", "2")
    with pytest.raises(ValueError, match="both set"):
        fixed_epochs()


def test_a_fold_is_trained_by_one_process_at_a_time(tmp_path):
    """Issue 28, case 7: two protocol runs (or two nnUNetv2_train) trained the same fold at the same time. Every
    plugin trainer holds the fold's lock while it trains; the operating system frees it when the holder ends."""
    from nnunet_dyntransnet.trainers.budget import LOCK_NAME, fold_lock
    from nnunet_dyntransnet.trainers.refusal import TrainingRefused

    with fold_lock(str(tmp_path)):
        assert "pid" in (tmp_path / LOCK_NAME).read_text()
        with pytest.raises(TrainingRefused, match="is being trained by pid"):
            with fold_lock(str(tmp_path)):
                pass
    with fold_lock(str(tmp_path)):  # released: the next training takes it
        pass


class _Stepped(_StandIn):
    """The stand-in, step by step: each training step takes ``step_s`` on the fake clock (nnU-Net's time.time)."""

    step_s = 1.0

    def train_step(self, batch):
        self.clock += self.step_s
        return {"loss": 0.0}

    dataloader_val = iter(lambda: {}, None)

    def on_train_epoch_start(self):
        pass

    def on_train_epoch_end(self, outputs):
        self.lines.append(f"train_loss over {len(outputs)} steps")

    def on_validation_epoch_start(self):
        pass

    def validation_step(self, batch):
        return {}

    def on_validation_epoch_end(self, outputs):
        self.lines.append(f"validation over {len(outputs)} steps")

    def run_training(self):
        self.on_train_start()
        for _ in range(self.current_epoch, self.num_epochs):
            self.logger.values["epoch_start_timestamps"].append(self.clock)
            self.on_train_epoch_start()
            outputs = [self.train_step({}) for _ in range(self.num_iterations_per_epoch)]
            self.on_train_epoch_end(outputs)
            self.on_validation_epoch_start()
            self.on_validation_epoch_end([self.validation_step({}) for _ in range(self.num_val_iterations_per_epoch)])
            self.on_epoch_end()
        self.on_train_end()


class _SteppedBudget(WallClockBudget, _Stepped):
    pass


def test_a_first_epoch_longer_than_the_budget_stops_inside_it_and_says_how_far_it_is(monkeypatch):
    """Issue 27: at the plan's widths on a CPU the first epoch took 575 s against a 2-minute budget and ran whole,
    with no line while it ran. The steps are the stop's grain; a long epoch reports its progress."""
    from nnunet_dyntransnet.trainers import budget

    monkeypatch.setenv("DYNTRANSNET_TRAIN_MINUTES", "2")  # 120 s; 50 steps of 11.5 s would be 575 s
    trainer = _SteppedBudget({}, "3d_fullres", 0, {}, torch.device("cpu"))
    trainer.step_s = 11.5
    monkeypatch.setattr(budget.time, "time", lambda: trainer.clock)
    trainer.run_training()
    assert trainer.ended and trainer.clock == pytest.approx(11 * 11.5)
    # the cut epoch is closed as nnU-Net closes one (its loss, a validation, the epoch's end: log, plot, checkpoint),
    # so the fold is a finished training (nnUNetv2_export_model_to_zip wants the progress plot of one)
    assert trainer.current_epoch == 1 and len(trainer.logger.values["epoch_end_timestamps"]) == 1
    assert trainer.lines[-4:-1] == ["DYNTRANSNET_TRAIN_MINUTES: the 2 minutes were spent in epoch 0, after 11 of its 50 "
                                    "steps: training ends there", "train_loss over 11 steps", "validation over 10 steps"]
    assert trainer.lines[-1].endswith("training ends after 1 epochs")
    progress = [line for line in trainer.lines if line.startswith("epoch 0: step")]
    assert progress == ["epoch 0: step 6 of 50, 0.8 of 2 minutes left"]  # 69 s in; the next would be at 129 s


def test_fixed_epochs_report_progress_and_never_stop_inside_an_epoch(monkeypatch):
    from nnunet_dyntransnet.trainers import budget

    monkeypatch.delenv("DYNTRANSNET_TRAIN_MINUTES", raising=False)
    monkeypatch.setenv("DYNTRANSNET_TRAIN_EPOCHS", "2")
    trainer = _SteppedBudget({}, "3d_fullres", 0, {}, torch.device("cpu"))
    trainer.step_s = 30.0
    monkeypatch.setattr(budget.time, "time", lambda: trainer.clock)
    trainer.run_training()
    assert trainer.current_epoch == 2 and trainer.clock == pytest.approx(2 * 50 * 30.0)
    assert "epoch 1: step 2 of 50 (epoch 2 of 2)" in trainer.lines
