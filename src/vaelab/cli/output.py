"""What the CLI shows: tables, JSON and progress bars (the library itself never prints)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["BarProgress", "format_table", "print_json"]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def format_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain-text table with aligned columns (numbers right-aligned)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], int | float) for row in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in cells)])


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=None, sort_keys=False))


class BarProgress:
    """tqdm bars for ``vaelab.training.loop.fit``: one per epoch, on stderr."""

    def __init__(self, banner: str = "") -> None:
        self.enabled = sys.stderr.isatty()
        self.banner = banner  # printed once training has really started
        self._bar: Any = None
        self._epoch = 0

    def epoch_start(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        from tqdm import tqdm

        if self.banner:
            print(self.banner, file=sys.stderr)
            self.banner = ""
        self._epoch = epoch
        self._bar = tqdm(total=steps, initial=done, desc=f"epoch {epoch + 1}/{epochs}",
                         unit="step", leave=False, disable=not self.enabled, file=sys.stderr,
                         mininterval=0.5)

    def step(self, loss: float | None) -> None:
        if self._bar is not None:
            self._bar.update(1)
            if loss is not None:
                self._bar.set_postfix(loss=f"{loss:.2f}", refresh=False)

    def epoch_end(self, record: dict[str, Any]) -> None:
        if self._bar is not None:
            self._bar.close()
        val = f"  val {record['val_loss']:.2f}" if "val_loss" in record else ""
        model = f"z_dim {record['z_dim']:>3}  " if "z_dim" in record else ""
        print(f"{model}epoch {record['epoch']:>3}  train {record['train_loss']:.2f}{val}  "
              f"recon {record.get('val_recon', record['train_recon']):.2f}  "
              f"kl {record.get('val_kl', record['train_kl']):.2f}  "
              f"{record['seconds']:.1f}s", file=sys.stderr)
