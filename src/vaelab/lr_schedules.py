"""Learning-rate schedules by name: what each does, the settings it reads, its torch scheduler.

Every schedule is a ``torch.optim.lr_scheduler`` object (or none, for ``constant``), composed
rather than rewritten: Burda et al.'s is ``MultiStepLR`` with gamma 10^(-1/7), a warm-up before a
cosine is ``SequentialLR(LinearLR, CosineAnnealingLR)``. The registry below is the one place that
knows the schedules; ``TrainConfig.lr_schedule`` takes its names and ``check_schedule`` its rules.

When a schedule moves (``LrScheduleSpec.unit``):

* ``step``: the time-based schedules (burda, cosine, step) are laid out in optimisation steps.
  Their milestones, given in epochs (Burda's in passes over the data), become step counts
  (epochs x steps per epoch, rounded), and a run steps the scheduler once after every
  optimisation step. A schedule compressed into fewer epochs than it was published for thus
  keeps every stage, even those shorter than an epoch.
* ``epoch``: ``plateau`` reacts to a measured loss, which exists only when an epoch ends, so it
  is stepped once per epoch with that epoch's validation loss (its training loss when the run
  holds no validation split).

``vaelab.training.lr_schedule.RunSchedule`` is what steps them during a run. Importing this
module does not import torch; the builders do, when called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from vaelab.registry import Registry
from vaelab.settings import SettingError

if TYPE_CHECKING:
    from vaelab.config import TrainConfig

__all__ = ["BURDA_GAMMA", "BURDA_PASSES", "BURDA_STAGES", "LR_SCHEDULES", "RESUME_FIXED",
           "LrScheduleSpec", "burda_milestones", "check_schedule", "resume_problem"]

BURDA_STAGES = 8  # Burda et al. (2015), section 5: 3^i passes at lr * 10^(-i/7), i = 0 ... 7
BURDA_GAMMA = 10 ** (-1 / 7)
BURDA_PASSES = sum(3 ** i for i in range(BURDA_STAGES))  # 3,280


@dataclass(frozen=True)
class LrScheduleSpec:
    """One named schedule."""

    name: str
    summary: str  # one line: what it does, for --help, `vaelab recipes` and the docs
    unit: str  # "step": stepped after every optimisation step; "epoch": once per epoch, on a loss
    build: Callable[[Any, TrainConfig, int], Any] | None  # (optimizer, config, steps per epoch)
    uses: tuple[str, ...] = ()  # the lr_* settings it reads besides lr and epochs
    length_bound: bool = False  # laid out over the run's epochs and steps
    per_model: bool = False  # follows each model's own loss, so models cannot share it

    @property
    def changes_lr(self) -> bool:
        return self.build is not None


LR_SCHEDULES: Registry[LrScheduleSpec] = Registry("learning-rate schedule")


def _register(spec: LrScheduleSpec) -> None:
    LR_SCHEDULES.add(spec.name, spec)


def burda_milestones(epochs: int, steps_per_epoch: int) -> list[int]:
    """The optimisation steps after which Burda's schedule cuts the rate, for a run's length.

    Stage i (i = 0 ... 7) lasts 3^i of the 3,280 passes; a run of ``epochs`` epochs is given the
    same shares, so a run of 3,280 epochs cuts exactly after epochs 1, 4, 13, 40, 121, 364 and
    1093. Rounded to the nearest step (halves up, in integers, so the result never depends on
    float rounding); a stage shorter than half a step is skipped.
    """
    total = epochs * steps_per_epoch
    ends = accumulate(3 ** i for i in range(BURDA_STAGES - 1))  # 1, 4, 13, ..., 1093
    return [(2 * end * total + BURDA_PASSES) // (2 * BURDA_PASSES) for end in ends]


def _burda(optimizer: Any, config: TrainConfig, steps: int) -> Any:
    from torch.optim.lr_scheduler import MultiStepLR

    return MultiStepLR(optimizer, burda_milestones(config.epochs, steps), gamma=BURDA_GAMMA)


def _cosine(optimizer: Any, config: TrainConfig, steps: int) -> Any:
    from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

    total, warm = config.epochs * steps, config.lr_warmup * steps
    if warm == 0:
        return CosineAnnealingLR(optimizer, T_max=total, eta_min=config.lr_min)
    # The rate rises linearly from lr / warm at the first step to lr at step warm, where the
    # cosine starts.
    rise = LinearLR(optimizer, start_factor=1 / warm, end_factor=1.0, total_iters=warm)
    fall = CosineAnnealingLR(optimizer, T_max=total - warm, eta_min=config.lr_min)
    return SequentialLR(optimizer, [rise, fall], milestones=[warm])


def _step(optimizer: Any, config: TrainConfig, steps: int) -> Any:
    from torch.optim.lr_scheduler import StepLR

    return StepLR(optimizer, step_size=config.lr_step_every * steps, gamma=config.lr_gamma)


def _plateau(optimizer: Any, config: TrainConfig, steps: int) -> Any:
    from torch.optim.lr_scheduler import ReduceLROnPlateau

    return ReduceLROnPlateau(optimizer, mode="min", factor=config.lr_gamma,
                             patience=config.lr_patience, min_lr=config.lr_min)


_register(LrScheduleSpec("constant", "the learning rate --lr throughout", "step", None))
_register(LrScheduleSpec(
    "burda", f"Burda et al. (2015): 3^i passes at lr * 10^(-i/7), i = 0 ... {BURDA_STAGES - 1} "
    f"({BURDA_PASSES:,} passes in all), laid out over --epochs", "step", _burda,
    length_bound=True))
_register(LrScheduleSpec(
    "cosine", "an optional linear warm-up over --lr-warmup epochs, then a cosine from --lr down "
    "to --lr-min at the last step", "step", _cosine, ("lr_warmup", "lr_min"), length_bound=True))
_register(LrScheduleSpec(
    "step", "the rate times --lr-gamma every --lr-step-every epochs", "step", _step,
    ("lr_step_every", "lr_gamma")))
_register(LrScheduleSpec(
    "plateau", "the rate times --lr-gamma when the validation loss (the training loss without a "
    "validation split) has not improved for --lr-patience epochs, down to --lr-min", "epoch",
    _plateau, ("lr_gamma", "lr_patience", "lr_min"), per_model=True))

# The lr_* settings, each read by the schedules that name it in ``uses``.
_SCHEDULE_SETTINGS = ("lr_warmup", "lr_step_every", "lr_gamma", "lr_patience", "lr_min")
_UNSET = {"lr_warmup": 0, "lr_step_every": 0}  # settings whose default means "not used"


def check_schedule(config: TrainConfig) -> None:
    """The rules between a run's schedule settings; a broken one is a SettingError."""
    spec = LR_SCHEDULES.get(config.lr_schedule)
    for name, unset in _UNSET.items():
        value = getattr(config, name)
        if value != unset and name not in spec.uses:
            users = [s.name for s in map(LR_SCHEDULES.get, LR_SCHEDULES.names()) if name in s.uses]
            raise SettingError(name, f"{unset} unless lr_schedule is {' or '.join(users)} "
                               f"(it is {spec.name})", value)
    if "lr_min" in spec.uses and not config.lr_min < config.lr:
        raise SettingError("lr_min", f"below lr ({config.lr:g}) for a {spec.name} schedule",
                           config.lr_min)
    if spec.name == "cosine" and config.lr_warmup >= config.epochs:
        raise SettingError("lr_warmup", f"fewer epochs than the run's {config.epochs}",
                           config.lr_warmup)
    if spec.name == "step" and config.lr_step_every < 1:
        raise SettingError("lr_step_every", "a positive number of epochs when lr_schedule is "
                           "step", config.lr_step_every)


# What a resumed run continues from its checkpoint (the optimizer's and the schedule's state),
# so changing it on resume would be silently ignored or would break the schedule.
RESUME_FIXED = ("lr", "lr_schedule", *_SCHEDULE_SETTINGS, "adam_eps", "adam_betas")


def resume_problem(saved: TrainConfig, now: TrainConfig) -> str | None:
    """Why ``now`` cannot resume a run saved with ``saved`` (None when it can)."""
    fixed: tuple[str, ...] = RESUME_FIXED
    if LR_SCHEDULES.get(saved.lr_schedule).length_bound:
        fixed += ("epochs", "batch_size")  # the schedule's steps were laid out over them
    for name in fixed:
        before, after = getattr(saved, name), getattr(now, name)
        if before != after:
            why = (f"its {saved.lr_schedule} schedule is laid out over {saved.epochs} epochs "
                   f"of batch {saved.batch_size}" if name in ("epochs", "batch_size") else
                   "the optimizer and its learning-rate schedule continue from their saved state")
            return (f"{name} cannot change when resuming (saved {before!r}, now {after!r}): "
                    f"{why}; train a new run to change it")
    return None
