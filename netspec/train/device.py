"""Where and how the model runs: device, precision, memory format, compilation, seeds.

The loop is written once, device-agnostic; this module holds every device-specific choice.

- ``auto``: cuda, then mps, then cpu.  Under torchrun, cuda means ``cuda:LOCAL_RANK``.
- ``precision: bf16``: autocast to bfloat16 (cuda, cpu); ``fp16``: autocast to float16 with
  a gradient scaler (cuda only).  ``fp32``: neither.
- ``channels_last: auto``: NHWC for image (C×H×W) inputs on cuda (tensor cores prefer it)
  and on the CPU (oneDNN's convolutions and pooling are faster in NHWC: measured 1.2x on the
  digits LeNet and 1.4x on the CIFAR-10 tutorial net, training at batch 64).
- ``cudnn.benchmark`` on cuda unless ``deterministic``; TF32 matmuls on cuda.
- ``compile: true``: ``torch.compile``; the checkpoint always holds the plain module's
  state, so a compiled run resumes uncompiled and the other way round."""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from typing import Any

import torch

from netspec.train.config import TrainConfig


@dataclass
class Placement:
    device: torch.device
    precision: str
    channels_last: bool
    autocast_dtype: torch.dtype | None

    def autocast(self) -> Any:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def scaler(self) -> Any:
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x


def choose_device(cfg: TrainConfig, local_rank: int | None = None) -> torch.device:
    want = cfg.device
    if want == "auto":
        if torch.cuda.is_available():
            want = "cuda"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            want = "mps"
        else:
            want = "cpu"
    if want.startswith("cuda"):
        if not torch.cuda.is_available():
            raise cfg.error(
                ("device",),
                f"train.device is {want} but torch sees no CUDA GPU "
                f"(torch {torch.__version__}); use auto or cpu",
            )
        if want == "cuda" and local_rank is not None:
            want = f"cuda:{local_rank % torch.cuda.device_count()}"
        device = torch.device(want)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise cfg.error(
                ("device",),
                f"train.device is {want} but there are {torch.cuda.device_count()} CUDA devices",
            )
        torch.cuda.set_device(device)
        return device
    if want == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise cfg.error(("device",), "train.device is mps but MPS is not available here")
    return torch.device(want)


def placement(cfg: TrainConfig, device: torch.device, input_rank: int) -> Placement:
    if cfg.precision == "fp16" and device.type != "cuda":
        raise cfg.error(
            ("precision",),
            f"precision fp16 needs a CUDA GPU (its gradient scaler "
            f"is for cuda); on {device.type} use bf16 or fp32",
        )
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision)
    channels_last = (
        cfg.channels_last
        if isinstance(cfg.channels_last, bool)
        else (device.type in ("cuda", "cpu") and input_rank == 3)
    )
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not cfg.deterministic
        torch.backends.cuda.matmul.allow_tf32 = not cfg.deterministic
        torch.backends.cudnn.allow_tf32 = not cfg.deterministic
    if cfg.deterministic:
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
    return Placement(device, cfg.precision, channels_last, dtype)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # every device's generator too
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover
        pass


def rng_state() -> dict[str, Any]:
    """Every random generator the loop may touch, as checkpointable values."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": _python_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np

        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        state["numpy"] = [kind, torch.from_numpy(keys.astype("int64")), pos, has_gauss, gauss]
    except ImportError:  # pragma: no cover
        pass
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("python") is not None:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if state.get("numpy") is not None:
        import numpy as np

        kind, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, gauss))


def _python_state() -> list[Any]:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def maybe_compile(cfg: TrainConfig, model: torch.nn.Module) -> torch.nn.Module:
    if not cfg.compile:
        return model
    try:
        return torch.compile(model)
    except Exception as exc:  # pragma: no cover - platform without a compiler
        raise cfg.error(
            ("compile",), f"torch.compile failed: {' '.join(str(exc).split())}"
        ) from None
