"""Training for a wall-clock budget instead of a number of epochs (``DYNTRANSNET_TRAIN_MINUTES``).

Networks compared at equal cost get the same time, not the same number of steps: a network
twice as slow per step trains half as many. With ``DYNTRANSNET_TRAIN_MINUTES`` set, every
trainer of this plugin (and ``nnUNetTrainer_WallClock``, nnU-Net's own U-Net and recipe)

- runs epochs of 50 training and 10 validation iterations (nnU-Net's 250/50, shortened so the
  schedule has a fine grain);
- after each epoch, counts the time its epochs took so far (nnU-Net's own epoch timestamps,
  which its checkpoints keep, so ``--c`` continues the same budget) and how many more epochs
  of the mean duration fit the rest;
- sizes its learning-rate schedule to that many epochs (polynomial decay ending at the budget;
  a warm-up, where the recipe has one, of a tenth of the epochs the first epoch's duration
  allows), and stops when the next epoch would not fit, with nnU-Net's final checkpoint and
  validation as after a full training;
- ramps the learning rate step by step during the first epoch (nnU-Net's warm-up moves once
  an epoch, and before the first epoch ends nothing says how many epochs fit: a budget that
  fits one epoch would otherwise spend it at a hundredth of the learning rate), towards a
  warm-up of a tenth of the steps that the steps so far say fit;
- checks the budget after every step as well: an epoch longer than what is left (a CPU at the plan's widths)
  stops when the budget is spent, not at its end (not under DDP, whose workers must stop at the same step);
- logs, in an epoch that runs longer than ``PROGRESS_EVERY_S``, a line that often: the step and the time left;
- records the budget (``train_minutes``) in ``debug.json`` and in every checkpoint, and
  refuses ``--c`` under another budget (the schedule would not be the one it started).

The time excludes nnU-Net's set-up and the final validation, the same for every trainer.
Unset, the trainers train nnU-Net's 1000 epochs as usual.

``DYNTRANSNET_TRAIN_EPOCHS=N`` instead trains exactly N epochs of the same 50 iterations, with
the warm-up (where the recipe has one) a tenth of them and the decay ending at epoch N: the same
number of steps for every network, whatever else the machine is doing (the screens of
docs/comparison, where a busy machine must not skew the result). It is recorded like the budget.
"""
from __future__ import annotations

import math
import os
import socket
import time
from contextlib import ExitStack, contextmanager
from typing import Any, Dict, Iterator, List, Optional, Sequence

import torch
from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler
from nnunetv2.training.lr_scheduler.warmup import Lin_incr_LRScheduler, PolyLRScheduler_offset
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_dyntransnet.trainers.refusal import ChecksResume, TrainingRefused

__all__ = ["BUDGET_ENV", "EPOCHS_ENV", "WallClockBudget", "fixed_epochs", "nnUNetTrainer_WallClock", "budget_minutes", "epochs_that_fit",
           "first_epoch_warmup_factor"]

BUDGET_ENV = "DYNTRANSNET_TRAIN_MINUTES"
EPOCHS_ENV = "DYNTRANSNET_TRAIN_EPOCHS"
ITERATIONS, VAL_ITERATIONS = 50, 10


def budget_minutes() -> Optional[float]:
    """``DYNTRANSNET_TRAIN_MINUTES`` as a positive number, or None when unset or empty."""
    raw = os.environ.get(BUDGET_ENV, "").strip()
    if not raw:
        return None
    try:
        minutes = float(raw)
    except ValueError:
        minutes = float("nan")
    if not math.isfinite(minutes) or minutes <= 0:
        raise ValueError(f"{BUDGET_ENV}={raw!r}: give the training time in minutes as a positive number "
                         f"(for example {BUDGET_ENV}=30), or unset it to train nnU-Net's epochs")
    return minutes


def fixed_epochs() -> Optional[int]:
    """``DYNTRANSNET_TRAIN_EPOCHS`` as a positive integer, or None when unset or empty; refused beside a budget."""
    raw = os.environ.get(EPOCHS_ENV, "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{EPOCHS_ENV}={raw!r}: give the number of 50-iteration epochs as a positive integer "
                         f"(for example {EPOCHS_ENV}=20), or unset it")
    if os.environ.get(BUDGET_ENV, "").strip():
        raise ValueError(f"{EPOCHS_ENV} and {BUDGET_ENV} are both set: a training runs for a number of epochs or for "
                         f"a time, not both; unset one of them")
    return int(raw)


def epochs_that_fit(durations: Sequence[float], budget_s: float) -> int:
    """How many epochs in all fit ``budget_s`` seconds, given the durations (s) of the epochs done.

    The first epoch carries one-off costs (data loader start, allocator warm-up), so the mean of
    the later ones predicts the next epochs once there are any. Never fewer than the epochs done:
    ``epochs_that_fit([30, 20, 20], 100) == 4`` (70 s spent, one more 20-s epoch fits).
    """
    done = len(durations)
    if done == 0:
        raise ValueError("no epoch finished yet: nothing to estimate from")
    mean = sum(durations[1:]) / (done - 1) if done > 1 else durations[0]
    remaining = budget_s - sum(durations)
    return done + max(0, int(remaining // mean)) if mean > 0 else done


def first_epoch_warmup_factor(step: int, seconds_since_second_step: float, budget_s: float,
                              steps_per_epoch: int) -> float:
    """The fraction of the recipe's learning rate for training step ``step`` (0-based) of the first epoch.

    A linear ramp over a warm-up of a tenth of the steps the budget fits, estimated from the
    steps done since the second one (the first carries one-off costs); before that is known,
    the ramp assumes ten epochs of warm-up. ``first_epoch_warmup_factor(4, 3.0, 600.0, 50) == 5 / 60``:
    1 s a step, so 600 steps fit and the warm-up is 60 steps, of which step 4 is the fifth.
    """
    if step < 2 or seconds_since_second_step <= 0:
        warmup_steps = 10.0 * steps_per_epoch
    else:
        per_step = seconds_since_second_step / (step - 1)
        warmup_steps = max(1.0, budget_s / per_step / 10)
    return min(1.0, (step + 1) / warmup_steps)


class _BudgetSpent(Exception):
    """Raised after the last epoch that fits, or inside an epoch when the budget is spent there (``inside_epoch``);
    ``run_training`` ends the training as nnU-Net does."""

    def __init__(self, inside_epoch: bool = False) -> None:
        super().__init__()
        self.inside_epoch = inside_epoch


class WallClockBudget(ChecksResume):
    """Mixin for an nnU-Net trainer: train for ``DYNTRANSNET_TRAIN_MINUTES`` (module docstring)."""

    # an epoch that has run this long says, this often, how far it is (and the budget left): on a CPU one epoch can
    # take minutes, and nnU-Net logs nothing until it ends
    PROGRESS_EVERY_S = 60.0

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        try:  # before nnU-Net's __init__, which creates the fold folder
            train_minutes, train_epochs = budget_minutes(), fixed_epochs()
        except ValueError as e:
            raise TrainingRefused(str(e)) from None
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.train_minutes, self.train_epochs = train_minutes, train_epochs
        self._steps_this_epoch, self._second_step_at, self._epoch_outputs = 0, None, []  # per epoch (on_train_epoch_start)
        if self.train_minutes is not None or self.train_epochs is not None:
            self.num_iterations_per_epoch, self.num_val_iterations_per_epoch = ITERATIONS, VAL_ITERATIONS
        if self.train_epochs is not None:
            self.num_epochs = self.train_epochs
            if hasattr(self, "warmup_duration_whole_net"):
                self.warmup_duration_whole_net = max(1, self.train_epochs // 10)

    def environment_recipe(self) -> Dict[str, Any]:
        """What environment variables changed in this training; kept in every checkpoint (``dyntransnet_recipe``)."""
        recipe = {"train_minutes": self.train_minutes}
        if self.train_epochs is not None:  # only when set, so checkpoints of earlier versions compare equal
            recipe["train_epochs"] = self.train_epochs
        return recipe

    def save_checkpoint(self, filename: str) -> None:
        with _checkpoints_carry({"dyntransnet_recipe": self.environment_recipe()}):
            super().save_checkpoint(filename)

    def check_resumable(self, checkpoint: Dict[str, Any], path: str) -> None:
        """``--c`` continues a training only under the budget it began with."""
        saved = checkpoint.get("dyntransnet_recipe")
        if saved is not None and saved.get("train_epochs") != self.train_epochs:
            raise TrainingRefused(f"{path} was trained with {EPOCHS_ENV} {saved.get('train_epochs') or 'unset'}, and it "
                                  f"is {self.train_epochs or 'unset'} now; --c continues a training only with its own "
                                  f"number of epochs. Set {EPOCHS_ENV} as before, or train a new fold")
        if saved is not None and saved.get("train_minutes") != self.train_minutes:
            was = "unset" if saved.get("train_minutes") is None else f"{saved['train_minutes']:g}"
            now = "unset" if self.train_minutes is None else f"{self.train_minutes:g}"
            raise TrainingRefused(f"{path} was trained with {BUDGET_ENV} {was}, and it is {now} now; --c continues a "
                                  f"training only under its own budget (its schedule was sized to it). Set "
                                  f"{BUDGET_ENV} as before, or train a new fold")
        super().check_resumable(checkpoint, path)

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        self._steps_this_epoch, self._second_step_at, self._epoch_outputs = 0, None, []

    def train_step(self, batch: dict) -> dict:
        if self.train_minutes is not None and self.current_epoch == 0 \
                and isinstance(getattr(self, "lr_scheduler", None), Lin_incr_LRScheduler):
            step = self._steps_this_epoch
            if step == 1:
                self._second_step_at = time.perf_counter()
            since = time.perf_counter() - self._second_step_at if self._second_step_at else 0.0
            factor = first_epoch_warmup_factor(step, since, self.train_minutes * 60, self.num_iterations_per_epoch)
            for group in self.optimizer.param_groups:
                group["lr"] = self.initial_lr * factor
        self._steps_this_epoch += 1
        result = super().train_step(batch)
        self._epoch_outputs.append(result)  # nnU-Net keeps them in its loop; a cut epoch is closed with these
        self._say_progress()
        # the steps are the stop's grain, not the epoch: a first epoch longer than the whole budget (a CPU at the
        # plan's widths) stops when the budget is spent. Not under DDP, where every worker must stop at one step.
        if self.train_minutes is not None and not getattr(self, "is_ddp", False) and self._seconds_left() <= 0:
            self.print_to_log_file(f"{BUDGET_ENV}: the {self.train_minutes:g} minutes were spent in epoch "
                                   f"{self.current_epoch}, after {self._steps_this_epoch} of its "
                                   f"{self.num_iterations_per_epoch} steps: training ends there")
            raise _BudgetSpent(inside_epoch=True)
        return result

    def _close_cut_epoch(self) -> None:
        """The epoch the budget cut short, closed as nnU-Net closes one (its loss so far, a validation, the epoch's
        end: the log, the progress plot, the checkpoints), so that the fold looks like any finished training."""
        self.on_train_epoch_end(self._epoch_outputs)
        with torch.no_grad():
            self.on_validation_epoch_start()
            outputs = [self.validation_step(next(self.dataloader_val)) for _ in range(self.num_val_iterations_per_epoch)]
            self.on_validation_epoch_end(outputs)
        try:
            self.on_epoch_end()
        except _BudgetSpent:
            pass  # it is: that is why the epoch was cut

    def _seconds_left(self) -> float:
        """The budget left now: the finished epochs' durations and the running epoch's time so far, on nnU-Net's
        clock (``time.time``, its epoch timestamps)."""
        starts = self.logger.get_value("epoch_start_timestamps", step=None)
        done = self._epoch_durations()
        running = time.time() - starts[-1] if len(starts) > len(done) else 0.0
        return self.train_minutes * 60 - sum(done) - running

    def _say_progress(self) -> None:
        """A log line every ``PROGRESS_EVERY_S`` seconds of a long epoch: the step, and the budget or epochs left."""
        starts = self.logger.get_value("epoch_start_timestamps", step=None)
        now = time.time()
        if not starts or now - starts[-1] < self.PROGRESS_EVERY_S \
                or now - getattr(self, "_progress_at", 0.0) < self.PROGRESS_EVERY_S:
            return
        self._progress_at = now
        line = f"epoch {self.current_epoch}: step {self._steps_this_epoch} of {self.num_iterations_per_epoch}"
        if self.train_minutes is not None:
            line += f", {max(0.0, self._seconds_left()) / 60:.1f} of {self.train_minutes:g} minutes left"
        else:
            line += f" (epoch {self.current_epoch + 1} of {self.num_epochs})"
        self.print_to_log_file(line)

    def _epoch_durations(self) -> List[float]:
        # nnU-Net's own epoch timestamps, in the running trainer; its "Epoch time" log lines are the same numbers,
        # which training.scheduling.epoch_times reads for finished folders (the demo, the report, the protocol)
        starts = self.logger.get_value("epoch_start_timestamps", step=None)
        ends = self.logger.get_value("epoch_end_timestamps", step=None)
        return [end - start for start, end in zip(starts, ends)]

    def on_train_start(self) -> None:
        super().on_train_start()
        if self.train_minutes is None:
            return
        self._epoch_cap = self.num_epochs
        self.print_to_log_file(f"{BUDGET_ENV}={self.train_minutes:g}: training for {self.train_minutes:g} minutes of "
                               f"epochs ({self.num_iterations_per_epoch} iterations each), at most {self.num_epochs}")
        if self._epoch_durations():  # continued with --c: the warm-up the first epoch set, and the budget left
            self._fit_warmup()
            total = self._epochs_that_fit()
            self._fit_schedule(total)
            if self.current_epoch >= total:
                self.print_to_log_file(f"{BUDGET_ENV}: the budget was spent by the {self.current_epoch} epochs done; "
                                       f"nothing more to train")
                raise _BudgetSpent()

    def on_epoch_end(self) -> None:
        super().on_epoch_end()  # logs the epoch's end time, saves checkpoints, counts the epoch
        if self.train_minutes is None:
            return
        if self.current_epoch == 1:
            self._fit_warmup()
        total = self._epochs_that_fit()
        self._fit_schedule(total)
        if self.current_epoch >= total:
            spent = sum(self._epoch_durations()) / 60
            self.print_to_log_file(f"{BUDGET_ENV}: {spent:.1f} of {self.train_minutes:g} minutes spent, another epoch "
                                   f"does not fit: training ends after {self.current_epoch} epochs")
            raise _BudgetSpent()

    def _epochs_that_fit(self) -> int:
        return self._agreed(min(self._epoch_cap, epochs_that_fit(self._epoch_durations(), self.train_minutes * 60)))

    def _agreed(self, count: int) -> int:
        """``count`` as DDP worker 0 computed it: every worker must stop after the same epoch (else the others
        wait forever in the next all-reduce) and follow the same schedule."""
        if not getattr(self, "is_ddp", False):
            return count
        import torch.distributed as dist

        decided = torch.tensor([count], device=self.device)
        dist.broadcast(decided, src=0)
        return int(decided.item())

    def run_training(self) -> None:
        with ExitStack() as held:
            try:
                held.enter_context(fold_lock(getattr(self, "output_folder", None), getattr(self, "local_rank", 0) == 0))
            except TrainingRefused:
                self.forget_own_log()  # the other training's log stays; this refused run's stub goes
                raise
            try:
                super().run_training()
            except _BudgetSpent as stop:
                if stop.inside_epoch:
                    self._close_cut_epoch()
                self.on_train_end()  # final checkpoint, data loaders shut down, as after the last epoch

    def _fit_warmup(self) -> None:
        """A warm-up of a tenth of the epochs the first epoch's duration allows (so the same after ``--c``)."""
        if not hasattr(self, "warmup_duration_whole_net"):
            return
        first = self._agreed(epochs_that_fit(self._epoch_durations()[:1], self.train_minutes * 60))
        self.warmup_duration_whole_net = min(self.warmup_duration_whole_net, max(1, first // 10))
        if isinstance(self.lr_scheduler, Lin_incr_LRScheduler):
            self.lr_scheduler.max_steps = self.warmup_duration_whole_net
            if self.current_epoch > self.warmup_duration_whole_net:  # continued past the shortened warm-up
                self.optimizer, self.lr_scheduler = self.configure_optimizers("train")

    def _fit_schedule(self, total: int) -> None:
        """End the learning-rate decay at epoch ``total`` (the last step it takes is ``total - 1``)."""
        # the loop's range was fixed when training started: num_epochs sizes the schedules, the budget stops
        self.num_epochs = max(total, getattr(self, "warmup_duration_whole_net", 0) + 1)
        if isinstance(self.lr_scheduler, PolyLRScheduler_offset):
            self.lr_scheduler.max_steps = self.num_epochs - self.lr_scheduler.start_step
        elif isinstance(self.lr_scheduler, PolyLRScheduler):
            self.lr_scheduler.max_steps = self.num_epochs


LOCK_NAME = ".dyntransnet_training.lock"


@contextmanager
def fold_lock(folder: Optional[str], take: bool = True) -> Iterator[None]:
    """While open, this process holds ``folder``'s training lock; another training of the same fold (a second
    protocol run, a second ``nnUNetv2_train``) is refused instead of writing the same checkpoints. The operating
    system releases the lock when the process ends, however it ends. ``take`` False (DDP workers but the first):
    nothing."""
    import fcntl

    if not take or folder is None:
        yield
        return
    path = os.path.join(folder, LOCK_NAME)
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise TrainingRefused(f"{folder} is being trained by {holder} now; two trainings of one fold would write "
                                  f"the same checkpoints. Wait for it to end (or stop it), then continue with --c") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        yield
    finally:
        handle.close()


@contextmanager
def _checkpoints_carry(extra: Dict[str, Any]) -> Iterator[None]:
    """While open, the checkpoint dicts nnU-Net's ``save_checkpoint`` hands to ``torch.save`` also carry ``extra``,
    and are written to a hidden file first and renamed into place (a stopped save leaves the previous checkpoint).

    nnU-Net builds the checkpoint dict inside ``save_checkpoint`` and saves it at once; wrapping
    ``torch.save`` for that one call adds our keys without copying its code or saving twice.
    """
    original = torch.save

    def save(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and "network_weights" in obj:
            obj = {**obj, **extra}
            if isinstance(f, (str, os.PathLike)):
                # whole or not at all: a training stopped during the save (SIGTERM) leaves the old checkpoint,
                # not a truncated one that every --c then fails on
                tmp = f"{os.fspath(f)}.partial-{os.getpid()}"
                try:
                    original(obj, tmp, *args, **kwargs)
                    os.replace(tmp, f)
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
                return None
        return original(obj, f, *args, **kwargs)

    torch.save = save
    try:
        yield
    finally:
        torch.save = original


class nnUNetTrainer_WallClock(WallClockBudget, nnUNetTrainer):
    """nnU-Net's own trainer (PlainConvUNet, SGD, its schedule) for ``DYNTRANSNET_TRAIN_MINUTES``: the
    U-Net row of a comparison at equal training time."""
