"""What a run leaves behind and what it prints (rank 0 only).

``runs/NAME/TIMESTAMP/``:

- ``spec.yaml``: the spec as trained (its text, byte for byte);
- ``train.yaml``: the effective training configuration (every default and override), so
  ``netspec train spec.yaml --config train.yaml`` repeats the run;
- ``metrics.jsonl``: one JSON object per epoch (see ``METRIC_KEYS``);
- ``events.out.tfevents.*``: TensorBoard (``loss/train``, ``loss/val``, ``accuracy/train``,
  ``accuracy/val``, ``accuracy/val_top5``, ``lr``; the x axis is the epoch);
- ``last.pt`` after every epoch, ``best.pt`` for the best validation accuracy so far;
- ``summary.json`` at the end: best epoch, test metrics, time;
- ``.lock``: held (``flock``) by the process training into the folder, with its pid.

Progress: on a terminal, a tqdm bar per epoch with the live loss and samples/s; otherwise
(CI, a log file) nothing but one line per epoch."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from netspec.emit.checkpoint import WriteError, cannot_write

METRIC_KEYS = (
    "epoch",
    "step",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "val_top5",
    "lr",
    "time_s",
    "samples_per_s",
)
TIMING_KEYS = ("time_s", "samples_per_s")  # the only values that differ between equal runs


def new_run_dir(root: str, name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / name
    try:
        base.mkdir(parents=True, exist_ok=True)
        for i in range(1000):
            candidate = base / (stamp if i == 0 else f"{stamp}-{i}")
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                continue
    except OSError as exc:
        raise cannot_write(base, exc) from None
    raise WriteError(f"cannot create a run folder under {base}")  # pragma: no cover


LOCK = ".lock"


class RunInUse(WriteError):
    """Another process is training into the run folder."""


def lock_run(run_dir: Path) -> int | None:
    """Hold ``run_dir`` for this process until ``unlock_run`` (or its exit, even by SIGKILL:
    the kernel drops a dead process's flock), so two ``--resume`` of one run cannot both
    append to its metrics and checkpoints.  Returns the lock's file descriptor; None where
    the platform or file system cannot lock (the run goes ahead unguarded).  RunInUse,
    naming the holder's pid, when another process holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    path = run_dir / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise cannot_write(path, exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        who = f"pid {holder}" if holder.isdigit() else "its pid not yet written"
        raise RunInUse(
            f"{run_dir} is in use by another netspec train ({who}); two processes writing "
            "one run would mix its checkpoints and metrics: wait for that one to end, or "
            "stop it"
        ) from None
    except OSError:  # pragma: no cover - a file system without flock (some NFS)
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd


def unlock_run(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the last descriptor releases the flock


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (WriteError if it cannot be written)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
    except OSError as exc:
        kept = f"the previous {path.name} is whole" if path.is_file() else ""
        raise cannot_write(path, exc, kept) from None


def write_metrics(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """metrics.jsonl from the history (rewritten whole: a resumed run drops any epoch that a
    crash recorded after its checkpoint)."""
    text = "".join(json.dumps(row) + "\n" for row in history)
    write_text_atomic(run_dir / "metrics.jsonl", text)


def append_metrics(run_dir: Path, row: dict[str, Any]) -> None:
    """One more line; on a failed write (a full disk) the file is cut back to its whole
    rows, and WriteError says so."""
    path = run_dir / "metrics.jsonl"
    data = (json.dumps(row) + "\n").encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as exc:
        raise cannot_write(path, exc) from None
    try:
        size = os.fstat(fd).st_size
        try:
            while data:
                data = data[os.write(fd, data):]
        except OSError as exc:
            os.ftruncate(fd, size)
            raise cannot_write(path, exc, "its earlier rows are whole") from None
    finally:
        os.close(fd)


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


class TensorBoard:
    def __init__(self, run_dir: Path, enabled: bool, purge_step: int | None = None):
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir), purge_step=purge_step)

    def epoch(self, row: dict[str, Any]) -> None:
        if self.writer is None:
            return
        e = row["epoch"]
        for key, tag in (
            ("train_loss", "loss/train"),
            ("val_loss", "loss/val"),
            ("train_acc", "accuracy/train"),
            ("val_acc", "accuracy/val"),
            ("val_top5", "accuracy/val_top5"),
            ("lr", "lr"),
        ):
            value = row.get(key)
            if value is not None and math.isfinite(value):
                self.writer.add_scalar(tag, value, e)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def epoch_line(row: dict[str, Any], epochs: int, eval_name: str, best: bool) -> str:
    width = len(str(epochs))
    parts = [
        f"epoch {row['epoch']:>{width}}/{epochs}",
        f"train loss {row['train_loss']:.4f} acc {fmt_pct(row['train_acc'])}",
    ]
    if row.get("val_loss") is not None:
        parts.append(
            f"{eval_name} loss {row['val_loss']:.4f} acc {fmt_pct(row['val_acc'])} "
            f"top5 {fmt_pct(row.get('val_top5'))}"
        )
    parts.append(f"lr {row['lr']:.3g}")
    parts.append(f"{row['time_s']:.2f}s {row['samples_per_s']:,.0f} samples/s")
    return "  ".join(parts) + ("  *" if best else "")


class Progress:
    """A tqdm bar on a terminal, nothing per step otherwise; ``say`` prints a line."""

    def __init__(self, mode: str, enabled: bool, stream: Any = None):
        self.stream = stream or sys.stderr
        tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.enabled = enabled and mode != "none"
        self.bar_mode = self.enabled and (mode == "bar" or (mode == "auto" and tty))
        self.bar = None
        self.last_update = 0.0

    def say(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def start(self, total: int, desc: str, initial: int = 0) -> None:
        if not self.bar_mode:
            return
        from tqdm import tqdm

        self.bar = tqdm(
            total=total,
            initial=initial,
            desc=desc,
            leave=False,
            file=self.stream,
            dynamic_ncols=True,
            unit="batch",
        )
        self.last_update = 0.0

    def wants_update(self) -> bool:
        """Whether to refresh now (~5 times a second; reading the loss syncs the device)."""
        if self.bar is None:
            return False
        now = time.monotonic()
        if now - self.last_update >= 0.2:
            self.last_update = now
            return True
        return False

    def update(self, n: int, loss: float | None = None, rate: float | None = None) -> None:
        if self.bar is None:
            return
        if loss is not None:
            self.bar.set_postfix_str(f"loss {loss:.4f}, {rate or 0:,.0f} samples/s", refresh=False)
        self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
