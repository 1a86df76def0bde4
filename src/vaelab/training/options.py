"""What a training run is told besides its configuration: resume, progress, stop, pictures."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Progress", "RunOptions"]


class Progress(Protocol):
    """What a training reports to whoever shows progress (the CLI draws bars from it).

    A stacked run reports each epoch once (its step losses are the mean over the models) and
    one ``epoch_end`` per model, whose record then carries the model's ``z_dim``.
    """

    def epoch_start(self, epoch: int, epochs: int, steps: int, done: int) -> None: ...
    def step(self, loss: float | None) -> None: ...
    def epoch_end(self, record: dict[str, Any]) -> None: ...


@dataclass
class RunOptions:
    """How to run a training, the same for one model, a stack of models or several processes."""

    resume: bool | Sequence[bool] = False  # continue from last.safetensors (one flag per run)
    progress: Progress | None = None  # told about epochs and steps
    stop_requested: Callable[[], bool] | None = None  # polled after every step
    pictures: bool = True  # write reconstructions, samples and loss curves at the end
    tracker_study: Mapping[str, str] | None = None  # a study's tracker handles (its runs' parent)

    def resumes(self, count: int) -> list[bool]:
        """One resume flag per run."""
        if isinstance(self.resume, bool):
            return [self.resume] * count
        flags = list(self.resume)
        if len(flags) != count:
            raise ValueError(f"{count} configs but {len(flags)} resume flags")
        return flags
