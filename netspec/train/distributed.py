"""Many processes through PyTorch's own engine: torchrun (torch.distributed.run) starts the
workers and sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; each worker
joins the process group (NCCL on GPUs, gloo on CPUs) and wraps the model in
DistributedDataParallel.  ``netspec train --nproc-per-node N`` runs torchrun's launcher
in-process with ``-m netspec train ...``; ``torchrun ... -m netspec train ...`` is the same,
multi-node flags included.

Only rank 0 writes files and prints progress.  Metrics are summed over ranks with
all_reduce; a checkpoint is read by rank 0 and broadcast, so the other nodes need no shared
filesystem."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

LAUNCH_FLAGS = (
    "--nproc-per-node",
    "--nnodes",
    "--node-rank",
    "--master-addr",
    "--master-port",
    "--rdzv-endpoint",
    "--rdzv-backend",
    "--rdzv-id",
)
_LAUNCH_NAMES = {f.replace("-", "_") for f in LAUNCH_FLAGS}  # --nproc_per_node too


@dataclass
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int | None = None
    initialized: bool = False  # by us (then we destroy it)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def from_environment() -> Context:
    """The torchrun environment, or a single process."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        world = int(os.environ["WORLD_SIZE"])
        rank = int(os.environ["RANK"])
        local = int(os.environ.get("LOCAL_RANK", rank))
        return Context(rank, world, local)
    return Context()


def init(ctx: Context, device: torch.device) -> None:
    """Join the process group (no-op for one process)."""
    import torch.distributed as dist

    if not ctx.distributed or (dist.is_available() and dist.is_initialized()):
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs: dict[str, Any] = {}
    if device.type == "cuda":
        kwargs["device_id"] = device
    dist.init_process_group(backend, **kwargs)
    ctx.initialized = True


def finish(ctx: Context) -> None:
    import torch.distributed as dist

    if ctx.initialized and dist.is_initialized():
        dist.destroy_process_group()
        ctx.initialized = False


def all_sum(ctx: Context, values: list[torch.Tensor]) -> list[torch.Tensor]:
    """Sum each (scalar) tensor over the ranks, in one collective."""
    if not ctx.distributed:
        return values
    import torch.distributed as dist

    flat = torch.stack([v.to(values[0].dtype) for v in values])
    dist.all_reduce(flat)
    return list(flat.unbind())


def any_rank(ctx: Context, flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` is true on any rank (every rank gets the same answer)."""
    if not ctx.distributed:
        return flag
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def broadcast(ctx: Context, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not ctx.distributed:
        return obj
    import torch.distributed as dist

    box = [obj if ctx.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(ctx: Context, obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not ctx.distributed:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        import torch.distributed as dist

        dist.barrier()


def launch(
    nproc: int,
    worker_argv: list[str],
    nnodes: str | None = None,
    node_rank: int | None = None,
    master_addr: str | None = None,
    master_port: int | None = None,
    rdzv_endpoint: str | None = None,
) -> int:
    """Run torchrun's launcher here: ``nproc`` workers of ``python -m netspec <worker_argv>``.

    One node without an address is ``--standalone`` (a free local port)."""
    from torch.distributed.run import get_args_parser, run

    argv = ["--nproc-per-node", str(nproc)]
    if nnodes is None and master_addr is None and rdzv_endpoint is None:
        argv.append("--standalone")
    else:
        if nnodes is not None:
            argv += ["--nnodes", str(nnodes)]
        if node_rank is not None:
            argv += ["--node-rank", str(node_rank)]
        if master_addr is not None:
            argv += ["--master-addr", master_addr]
        if master_port is not None:
            argv += ["--master-port", str(master_port)]
        if rdzv_endpoint is not None:
            argv += ["--rdzv-endpoint", rdzv_endpoint, "--rdzv-backend", "c10d"]
    argv += ["-m", "netspec", *worker_argv]
    args = get_args_parser().parse_args(argv)
    if "OMP_NUM_THREADS" not in os.environ and nproc > 1:
        # torchrun's default is 1 thread per worker (and a banner saying so); use the
        # cores each worker has
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    try:
        run(args)
    except Exception as exc:  # ChildFailedError: a worker failed; its output said why
        name = type(exc).__name__
        if name == "ChildFailedError":
            failures = getattr(exc, "failures", {}) or {}
            codes = [f.exitcode for f in failures.values()] or [1]
            code = next((c for c in codes if c and c > 0), 1)
            return code if code in (1, 2, 130) else 1
        raise
    return 0


def strip_launch_flags(argv: list[str]) -> list[str]:
    """The worker's arguments: the command line without the launcher's flags."""
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
            continue
        if token.split("=", 1)[0].replace("-", "_") in _LAUNCH_NAMES:
            skip = "=" not in token
            continue
        out.append(token)
    return out
