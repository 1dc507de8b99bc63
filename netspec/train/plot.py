"""``netspec plot RUN_DIR -o curves.png``: loss and accuracy per epoch from metrics.jsonl."""

from __future__ import annotations

import os
from pathlib import Path

from netspec.train.output import read_metrics


class PlotError(Exception):
    pass


def plot(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Draw the run's curves; returns the image path (RUN_DIR/curves.png by default)."""
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.jsonl").is_file():
        raise PlotError(f"{run_dir}: no metrics.jsonl (is this a run folder, runs/NAME/TIME?)")
    rows = read_metrics(run_dir)
    if not rows:
        raise PlotError(f"{run_dir}: metrics.jsonl is empty (no epoch has finished yet)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]

    def series(key: str) -> list[float] | None:
        values = [r.get(key) for r in rows]
        if all(v is None for v in values):
            return None
        return [float("nan") if v is None else v for v in values]

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        values = series(key)
        if values:
            ax_loss.plot(epochs, values, marker=".", label=label)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    for key, label in (
        ("train_acc", "train top-1"),
        ("val_acc", "validation top-1"),
        ("val_top5", "validation top-5"),
    ):
        values = series(key)
        if values:
            ax_acc.plot(epochs, [100 * v for v in values], marker=".", label=label)
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{run_dir.parent.name} / {run_dir.name}")
    fig.tight_layout()
    out = Path(out) if out is not None else run_dir / "curves.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
