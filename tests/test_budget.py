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
