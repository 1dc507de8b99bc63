"""The training loop: per epoch, train, then evaluate (loss, top-1, top-5) in eval mode
under ``torch.inference_mode``; checkpoint, log, repeat.

Resume is exact on the CPU: the data order of an epoch is a function of (seed, epoch), and
the checkpoint holds everything else that decides the next step (weights, optimizer,
scheduler, scaler, RNG states, the position inside an interrupted epoch and its running
sums), so a resumed run ends bitwise-identical to one that was never stopped.

Ctrl-C (or SIGTERM, e.g. from a batch scheduler) is a request: the current optimizer step
finishes, the state is saved to ``last.pt`` (mid-epoch positions included) and the run ends
with status 130; a second Ctrl-C a second later quits at once (the previous ``last.pt``
stays whole).  Under torchrun the ranks agree on stopping every ``STOP_SYNC_EVERY`` steps."""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from netspec.core.diagnostics import SpecError
from netspec.emit import checkpoint as ckpt_io
from netspec.emit import codegen, memory
from netspec.train import components, config, distributed, output
from netspec.train import data as data_mod
from netspec.train import device as dev

STOP_SYNC_EVERY = 16
RUNNING_SUMS = ("loss_sum", "correct", "seen")  # of an interrupted epoch, one per rank
SUM_DTYPE = {False: torch.float64, True: torch.float32}  # MPS has no float64


class Interrupted(Exception):
    """Training stopped on request after saving; the CLI exits 130."""


@dataclass
class Run:
    dir: Path | None
    history: list[dict[str, Any]]
    summary: dict[str, Any]
    interrupted: bool = False  # by Ctrl-C / SIGTERM (the CLI exits 130)
    stopped: bool = False  # before the last epoch: interrupted, or stop_after
    model: Any = field(default=None, repr=False)


class Stopper:
    """SIGINT/SIGTERM set a flag that the loop reads between optimizer steps."""

    def __init__(self, say: Any):
        self.requested = False
        self.first = 0.0
        self.say = say
        self.previous: dict[int, Any] = {}

    def handle(self, signum: int, frame: Any) -> None:
        now = time.monotonic()
        if not self.requested:
            self.requested, self.first = True, now
            self.say(
                "stopping: finishing this step and saving last.pt (Ctrl-C again to quit "
                "without saving)"
            )
        elif now - self.first > 1.0:  # a repeat within a second is the same Ctrl-C twice
            raise KeyboardInterrupt

    def __enter__(self) -> Stopper:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self.handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


class Trainer:
    def __init__(
        self,
        spec: Any,
        result: Any,
        cfg: config.TrainConfig,
        ctx: distributed.Context,
        stream: Any = None,
        ignore_memory: bool = False,
    ):
        self.spec, self.result, self.cfg, self.ctx = spec, result, cfg, ctx
        self.ignore_memory = ignore_memory
        self.lock: int | None = None  # the run folder's, held until train() returns
        self.progress = output.Progress(cfg.progress, ctx.main, stream)
        self.say = self.progress.say

    # ------------------------------------------------------------------ setup

    def setup(self, ckpt_path: Path | None) -> None:
        cfg, ctx = self.cfg, self.ctx
        if ctx.main and ckpt_path is not None:  # before anything of the run is read
            self.lock = output.lock_run(ckpt_path.parent)
        self.device = dev.choose_device(cfg, ctx.local_rank if ctx.distributed else None)
        # before the data and the model: a spec too big for this machine is refused at once
        memory.guard(self.result, batch=math.ceil(cfg.batch_size / ctx.world), training=True,
                     device=self.device, ignore=self.ignore_memory)
        distributed.init(ctx, self.device)
        net = self.result.network
        self.place = dev.placement(cfg, self.device, len(net.input_shape))
        dev.seed_everything(cfg.seed)
        self.loss = components.build_loss(cfg).to(self.device)
        self.data = data_mod.prepare(cfg, tuple(net.input_shape), self.device)
        data_mod.check_shapes(cfg, self.data, self.spec, self.result)
        self.targets = components.targets_for(cfg.loss.name)
        self.workers = data_mod.worker_count(cfg)
        self.model = self.build_model()
        self.plan = self.batch_plan()
        self.weights = self.plan.weights(cfg.accumulate)
        self.steps_per_epoch = math.ceil(len(self.plan) / cfg.accumulate)
        self.optimizer = components.build_optimizer(cfg, self.model.parameters())
        self.scheduler, self.interval = components.build_scheduler(
            cfg, self.optimizer, self.steps_per_epoch
        )
        self.scaler = self.place.scaler()
        self.loader_cache: dict = {}
        self.eval_plans: dict[str, data_mod.BatchPlan] = {}
        self.generator = torch.Generator()
        self.start_or_resume(ckpt_path)
        self.net, self.eval_net = self.wrapped_model()
        self.run_dir: Path | None = None
        if ctx.main:
            self.open_run_dir(ckpt_path)

    def build_model(self) -> Any:
        """The network on the device, initialised from train.seed (guarded by setup)."""
        from netspec.emit.build import build

        torch.manual_seed(self.cfg.seed)
        model = build(self.result, ignore_memory=True).to(self.device)
        if self.place.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def batch_plan(self) -> data_mod.BatchPlan:
        cfg, ctx = self.cfg, self.ctx
        plan = data_mod.BatchPlan(
            len(self.data.train),
            cfg.batch_size,
            ctx.world,
            ctx.rank,
            cfg.seed,
            shuffle=True,
            drop_last=cfg.data.drop_last,
        )
        if len(plan) == 0:
            raise cfg.error(
                ("batch_size",),
                f"train.batch_size {cfg.batch_size} leaves no batch "
                f"of the {len(self.data.train)} training samples (drop_last)",
            )
        return plan

    def start_or_resume(self, ckpt_path: Path | None) -> None:
        """Where the run stands: at the start, or where the checkpoint left it."""
        self.epoch = 0  # completed epochs
        self.step = 0
        self.position: dict[str, Any] | None = None  # inside an interrupted epoch
        self.history: list[dict[str, Any]] = []
        self.best = {"acc": None, "epoch": 0}
        self.best_state: dict[str, torch.Tensor] | None = None
        self.elapsed = 0.0
        if ckpt_path is not None:
            self.restore(ckpt_path)
        else:
            dev.seed_everything(self.cfg.seed + self.ctx.rank)

    def wrapped_model(self) -> tuple[Any, Any]:
        """(the model to train, the model to evaluate): DistributedDataParallel around the
        first under torchrun, each compiled when train.compile says so."""
        cfg, model = self.cfg, self.model
        net = model
        if self.ctx.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            net = DistributedDataParallel(model, device_ids=ids)
        net = dev.maybe_compile(cfg, net)
        return net, net if not self.ctx.distributed else dev.maybe_compile(cfg, model)

    def open_run_dir(self, ckpt_path: Path | None) -> None:
        """The run folder (the resumed one, or a new one holding spec.yaml), its settings,
        metrics and TensorBoard log."""
        cfg = self.cfg
        if ckpt_path is not None:
            self.run_dir = ckpt_path.parent
            ckpt_io.remove_stale_temporaries(self.run_dir)
        else:
            self.run_dir = output.new_run_dir(cfg.runs, cfg.name or self.result.network.name)
            self.lock = output.lock_run(self.run_dir)
            output.write_text_atomic(self.run_dir / "spec.yaml", self.spec.doc.text)
        output.write_text_atomic(self.run_dir / "train.yaml", cfg.dumps())
        output.write_metrics(self.run_dir, self.history)
        self.tb = output.TensorBoard(
            self.run_dir, cfg.tensorboard, purge_step=self.epoch + 1 if ckpt_path else None
        )

    def restore(self, path: Path) -> None:
        state = ckpt_io.load(path)
        if "spec_hash" in state:  # a hand-made checkpoint has none: its weights must fit
            ckpt_io.check_same_spec(state, path, self.result, self.spec.file)
        ckpt_io.check_resumable(state, path)  # every key, before anything of it is used
        self.refuse_unfitting(state, path)
        rngs = state.get("rng") or []
        self.load_states(state, path, rngs)
        self.epoch, self.step = state["epoch"], state["step"]
        self.position = _rank_position(state.get("position"), self.ctx)
        self.history = list(state.get("history") or [])
        self.best = dict(state.get("best") or self.best)
        self.elapsed = state.get("elapsed") or 0.0
        if len(rngs) != self.ctx.world:  # another number of processes: a fresh, still
            # seeded, stream per rank
            dev.seed_everything(self.cfg.seed + 7919 * (self.epoch + 1) + self.ctx.rank)
        done = f"epoch {self.epoch}" + (
            f" and {self.position['batch']} batches of epoch {self.position['epoch']}"
            if self.position
            else ""
        )
        self.say(f"resuming {path}: {done} done, step {self.step}")

    def refuse_unfitting(self, state: dict[str, Any], path: Path) -> None:
        """A checkpoint whose weights, optimizer, scheduler or position do not fit this run
        is refused before any of it is loaded."""
        cfg = self.cfg
        mismatch = ckpt_io.state_dict_mismatch(self.model.state_dict(), state["model"])
        position = state.get("position")
        problems = [
            mismatch and f"its weights do not fit {self.spec.file}: {mismatch}",
            ckpt_io.optimizer_problem(state["optimizer"], self.optimizer, cfg.optimizer.name),
            ckpt_io.scheduler_problem(state.get("scheduler"), self.scheduler,
                                      cfg.scheduler.name if cfg.scheduler else None,
                                      len(self.optimizer.param_groups)),
            position is not None and position["batch"] > len(self.plan)
            and (f"'position' is batch {position['batch']} of an epoch that has "
                 f"{len(self.plan)} batches"),
        ]
        for problem in filter(None, problems):
            raise ckpt_io.resume_error(path, problem)

    def load_states(self, state: dict[str, Any], path: Path, rngs: list) -> None:
        """Weights, optimizer, scheduler, scaler and (same number of processes) RNG states."""
        loads = [("weights", self.model.load_state_dict, state["model"]),
                 ("optimizer state", self.optimizer.load_state_dict, state["optimizer"])]
        if self.scheduler is not None:
            loads.append(("scheduler state", self.scheduler.load_state_dict, state["scheduler"]))
        if state.get("scaler"):
            loads.append(("gradient scaler state", self.scaler.load_state_dict, state["scaler"]))
        if len(rngs) == self.ctx.world:
            loads.append(("random generator state", dev.set_rng_state, rngs[self.ctx.rank]))
        for what, load_into, value in loads:
            try:
                load_into(value)
            except (ValueError, TypeError, KeyError, IndexError, AttributeError,
                    RuntimeError) as exc:
                text = " ".join(str(exc).split())
                raise ckpt_io.resume_error(
                    path, f"its {what} does not load: {type(exc).__name__}: {text}") from None

    # ------------------------------------------------------------------ checkpoints

    def state(self) -> dict[str, Any]:
        """The checkpoint's content (every rank calls this: the per-rank RNG states and the
        running sums of an interrupted epoch are gathered)."""
        mine = {"rng": dev.rng_state(), "sums": None}
        if self.position is not None:
            mine["sums"] = [self.position[k] for k in RUNNING_SUMS]
        ranks = distributed.gather(self.ctx, ckpt_io.to_cpu(mine))
        rngs = [r["rng"] for r in ranks]
        position = None
        if self.position is not None:
            position = {k: v for k, v in self.position.items() if k not in RUNNING_SUMS}
            for j, key in enumerate(RUNNING_SUMS):
                position[key] = [r["sums"][j] for r in ranks]  # one per rank
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "epoch": self.epoch,
            "step": self.step,
            "position": position,
            "rng": rngs,
            "history": self.history,
            "best": self.best,
            "elapsed": self.elapsed,
            "world_size": self.ctx.world,
            "classes": list(self.data.classes),
            "config": config._plain(self.cfg.as_dict()),
            "spec_text": self.spec.doc.text,
            "spec_file": self.spec.file,
            "spec_name": self.result.network.name,
            "spec_hash": ckpt_io.spec_hash(self.result),
            "spec_layers": ckpt_io.spec_layers(self.result),
            "torch_version": str(torch.__version__),
        }

    def save(self, improved: bool = False) -> None:
        state = self.state()  # every rank: the RNG states are gathered
        if self.ctx.main:
            ckpt_io.save(state, self.run_dir / "last.pt")
            if improved:
                ckpt_io.link_best(self.run_dir / "last.pt", self.run_dir / "best.pt")

    # ------------------------------------------------------------------ one epoch

    def should_stop(self, stopper: Stopper, force: bool = False) -> bool:
        if not self.ctx.distributed:
            return stopper.requested
        if not force and self.step % STOP_SYNC_EVERY:
            return False
        return distributed.any_rank(self.ctx, stopper.requested, self.device)

    def train_epoch(self, epoch: int, stopper: Stopper) -> dict[str, float]:
        cfg, plan, dev_ = self.cfg, self.plan, self.device
        sums = SUM_DTYPE[dev_.type == "mps"]
        self.model.train()
        plan.set_epoch(epoch)
        self.generator.manual_seed(cfg.seed * 1_000_003 + epoch)
        plan.start, epoch_lr, loss_sum, correct, seen, spent = self.epoch_so_far(epoch, sums)
        n = len(plan)
        acc = cfg.accumulate
        ddp = self.ctx.distributed
        self.progress.start(n, f"epoch {epoch}/{cfg.epochs}", initial=plan.start)
        pending = 0
        i = plan.start
        t0 = time.perf_counter()
        stop = False
        for x, y in data_mod.batches(
            self.data.train, plan, dev_, self.workers, self.generator, self.loader_cache
        ):
            x = self.place.prepare_input(x)
            last_micro = (i + 1) % acc == 0 or i + 1 == n
            out, loss = self.forward_backward(x, y, self.weights[i], ddp and not last_micro)
            count = y.shape[0]
            loss_sum.add_(loss.detach(), alpha=count)  # one op: promotes to sums' dtype
            correct += (out.detach().argmax(-1) == y).sum()
            seen += count
            i += 1
            pending += 1
            if last_micro:
                self.optimizer_step()
                if i < n and self.should_stop(stopper):
                    stop = True
                    break
            if self.progress.wants_update():
                rate = seen / max(1e-9, spent + time.perf_counter() - t0)
                self.progress.update(pending, loss.item(), rate * self.ctx.world)
                pending = 0
        seen_t = torch.tensor(float(seen), dtype=sums, device=dev_)
        totals = distributed.all_sum(self.ctx, [loss_sum, correct.to(sums), seen_t])
        spent += time.perf_counter() - t0
        self.progress.close()
        if stop:  # saved to resume at batch i with these running sums
            self.position = {"epoch": epoch, "batch": i, "loss_sum": loss_sum,
                             "correct": correct, "seen": seen, "time": spent, "lr": epoch_lr}
            self.save()
            raise Interrupted
        total = float(totals[2])
        return {"loss": float(totals[0]) / total, "acc": float(totals[1]) / total,
                "samples": total, "time": spent, "lr": epoch_lr}

    def epoch_so_far(self, epoch: int, sums: torch.dtype) -> tuple:
        """(first batch, learning rate, loss sum, correct, samples seen, seconds) of
        ``epoch`` so far: nothing yet, or what an interrupted run saved (used up here)."""
        dev_ = self.device
        pos = self.position if self.position and self.position["epoch"] == epoch else None
        self.position = None
        if pos is None:
            return (
                0,
                self.optimizer.param_groups[0]["lr"],
                torch.zeros((), dtype=sums, device=dev_),
                torch.zeros((), dtype=torch.int64, device=dev_),
                0,
                0.0,
            )
        return (pos["batch"], pos["lr"], pos["loss_sum"].to(dev_, sums),
                pos["correct"].to(dev_), pos["seen"], pos["time"])

    def forward_backward(self, x: Any, y: Any, weight: float, defer_sync: bool) -> tuple:
        """(output, loss) of one micro-batch, whose gradient (scaled by its share of the
        step, ``weight``) is added up; ``defer_sync``: not the last micro-batch of a step,
        so DistributedDataParallel need not all-reduce yet."""
        scaler_on = self.scaler.is_enabled()
        sync = self.net.no_sync() if defer_sync else contextlib.nullcontext()
        with sync:
            with self.place.autocast():
                out = self.net(x)
                loss = self.loss(out, self.targets(y, out))
            scaled = loss if weight == 1.0 else loss * weight
            (self.scaler.scale(scaled) if scaler_on else scaled).backward()
        return out, loss

    def optimizer_step(self) -> None:
        """Clip (train.clip_grad_norm), step through the gradient scaler when it is on,
        zero the gradients; a per-step scheduler steps too."""
        clip, scaler_on = self.cfg.clip_grad_norm, self.scaler.is_enabled()
        if clip is not None:
            if scaler_on:
                self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        if scaler_on:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        if self.scheduler is not None and self.interval == "step":
            self.scheduler.step()

    def evaluate(self, split: data_mod.Split) -> dict[str, float]:
        plan = self.eval_plans.get(split.name)
        if plan is None:
            plan = self.eval_plans[split.name] = eval_plan(
                len(split), self.cfg.eval_batch_size, self.ctx
            )
        return evaluate_split(
            self.eval_net,
            self.model,
            split,
            plan,
            self.loss,
            self.place,
            self.ctx,
            self.targets,
            len(self.data.classes),
            self.workers,
            self.loader_cache,
        )

    # ------------------------------------------------------------------ the run

    def describe(self) -> None:
        cfg, net, ctx = self.cfg, self.result.network, self.ctx
        params = sum(p.numel() for p in self.model.parameters())
        shape = "×".join(map(str, net.input_shape))
        out = "×".join(map(str, self.result.output_shape or ()))
        self.say(
            f"netspec train: {net.name} ({self.spec.file}), {shape} -> {out}, {params:,} parameters"
        )
        self.say(f"data: {self.data.describe()}")
        for warning in components.last_layer_warnings(self.result, cfg.loss.name):
            self.say(warning)
        n = torch.get_num_threads()
        threads = f" ({n} thread{'s' if n != 1 else ''})" if self.device.type == "cpu" else ""
        opt = self.optimizer.param_groups[0]
        procs = f"{ctx.world} processes" if ctx.distributed else "1 process"
        sched = f", {cfg.scheduler.name} per {self.interval}" if cfg.scheduler else ""
        self.say(
            f"device: {self.device}{threads}, {cfg.precision}, {procs}; batch "
            f"{cfg.batch_size}{' x' + str(cfg.accumulate) if cfg.accumulate > 1 else ''}, "
            f"{cfg.optimizer.name} lr {opt['lr']:g}{sched}, {cfg.epochs} epochs"
        )
        self.say(f"run: {self.run_dir}")

    def fit(self, stop_after: int | None = None) -> Run:
        cfg = self.cfg
        eval_split, eval_name = (
            (self.data.val, "val") if self.data.val is not None else (self.data.test, "test")
        )
        stopped = False
        if self.ctx.main:
            self.describe()
        if self.epoch >= cfg.epochs and not self.position:
            self.say(
                f"already trained {self.epoch} epochs (train.epochs is {cfg.epochs}); "
                "pass --epochs to train longer"
            )
        ran = 0
        with Stopper(self.say) as stopper:
            try:
                while self.epoch < cfg.epochs:
                    self.next_epoch(eval_split, eval_name, stopper)
                    ran += 1
                    if self.epoch < cfg.epochs and (
                        self.should_stop(stopper, force=True)
                        or (stop_after is not None and ran >= stop_after)
                    ):
                        raise Interrupted
            except Interrupted:
                stopped = True
            interrupted = stopped and stopper.requested
        summary = {}
        if stopped:
            where = f"epoch {self.epoch}" + (
                f" + {self.position['batch']}/{len(self.plan)} batches" if self.position else ""
            )
            saved = self.run_dir / "last.pt" if self.run_dir else "last.pt"
            self.say(
                f"stopped after {where}: saved {saved}; continue with: netspec train "
                f"--resume {self.run_dir}"
            )
        else:
            summary = self.finish(eval_name)
        if self.ctx.main:
            self.tb.close()
        return Run(self.run_dir, self.history, summary, interrupted, stopped, self.model)

    def next_epoch(self, eval_split: data_mod.Split | None, eval_name: str,
                   stopper: Stopper) -> None:
        """Train and evaluate one epoch; save last.pt (and best.pt), log the metrics."""
        cfg = self.cfg
        epoch = self.epoch + 1
        stats = self.train_epoch(epoch, stopper)
        val = self.evaluate(eval_split) if eval_split is not None else None
        if self.scheduler is not None and self.interval == "epoch":
            if cfg.scheduler.name == "ReduceLROnPlateau":
                self.scheduler.step(val["loss"] if val else stats["loss"])
            else:
                self.scheduler.step()
        self.epoch = epoch
        self.elapsed += stats["time"]
        row = _metrics_row(epoch, self.step, stats, val)
        improved = self.keep_if_best(epoch, val)
        self.history.append(row)
        self.save(improved)
        if self.ctx.main:
            output.append_metrics(self.run_dir, row)
            self.tb.epoch(row)
            self.say(output.epoch_line(row, cfg.epochs, eval_name, improved))

    def keep_if_best(self, epoch: int, val: dict[str, Any] | None) -> bool:
        """Whether ``epoch`` has the best validation accuracy so far; its weights are kept
        (on the CPU) for the test at the end."""
        score = val["acc"] if val else None
        improved = score is not None and (self.best["acc"] is None or score > self.best["acc"])
        if improved:
            self.best = {"acc": score, "epoch": epoch}
            self.best_state = {
                k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()
            }
        return improved

    def finish(self, eval_name: str) -> dict[str, Any]:
        """Test metrics of the best weights; summary.json."""
        summary: dict[str, Any] = {
            "spec": self.result.network.name,
            "run_dir": str(self.run_dir),
            "epochs": self.epoch,
            "steps": self.step,
            "best_epoch": self.best["epoch"],
            f"best_{eval_name}_acc": self.best["acc"],
            "train_time_s": round(self.elapsed, 3),
            "device": str(self.device),
            "world_size": self.ctx.world,
        }
        test = self.data.test
        if test is not None:
            weights, result = self.evaluate_test(test)
            summary.update(
                {
                    "test_weights": f"{weights}.pt",
                    "test_loss": result["loss"],
                    "test_acc": result["acc"],
                    "test_top5": result["top5"],
                    "test_samples": int(result["samples"]),
                }
            )
            which = f"best.pt, epoch {self.best['epoch']}" if weights == "best" else "last.pt"
            self.say(
                f"test ({which}): loss {result['loss']:.4f} acc "
                f"{output.fmt_pct(result['acc'])} top5 {output.fmt_pct(result['top5'])} "
                f"({int(result['samples']):,} samples)"
            )
        if self.ctx.main:
            output.write_text_atomic(
                self.run_dir / "summary.json", json.dumps(summary, indent=1) + "\n"
            )
            self.say(f"run: {self.run_dir} ({self.elapsed:.1f}s training)")
            self.say(self.weights_hint())
        return summary

    def weights_hint(self) -> str:
        """How to get plain weights for the tutorial's model.load_state_dict(torch.load(...)):
        best.pt is a checkpoint, torch.load gives its whole dictionary."""
        best = "best.pt" if (self.run_dir / "best.pt").is_file() else "last.pt"
        name = self.result.network.name.lower()
        hint = (f"{best} is a checkpoint (for --resume, eval, predict); the plain weights for "
                f"model.load_state_dict(torch.load(\"{name}.pt\")):\n"
                f"  netspec weights {self.run_dir / best} -o {name}.pt")
        try:
            renamed = codegen.state_dict_renames(self.result, "class")
        except SpecError:  # a spec codegen cannot write: no generated class to load into
            renamed = {}
        if renamed:
            hint += (f"\nand for the class netspec codegen writes (it names the layers the spec "
                     f"leaves unnamed):\n  netspec weights {self.run_dir / best} -o "
                     f"{name}_class.pt --style class")
        return hint

    def evaluate_test(self, split: data_mod.Split) -> tuple[str, dict[str, Any]]:
        """('best' or 'last', the metrics): evaluated with the best epoch's weights when
        there is one (the model keeps its last weights afterwards)."""
        weights = "last"
        if self.best["epoch"]:
            state = self.best_weights()
            if state is not None:
                current = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                self.model.load_state_dict(state)
                weights = "best"
        result = self.evaluate(split)
        if weights == "best":
            self.model.load_state_dict(current)
        return weights, result

    def best_weights(self) -> dict[str, Any] | None:
        """The best epoch's state dict: kept in memory, else best.pt (a resumed run);
        rank 0's on every rank."""
        state = self.best_state
        if state is None and self.run_dir is not None and (self.run_dir / "best.pt").is_file():
            state = ckpt_io.load(self.run_dir / "best.pt")["model"]
        return distributed.broadcast(self.ctx, state)


def _metrics_row(epoch: int, step: int, stats: dict[str, Any],
                 val: dict[str, Any] | None) -> dict[str, Any]:
    """One line of metrics.jsonl."""
    return {
        "epoch": epoch,
        "step": step,
        "train_loss": stats["loss"],
        "train_acc": stats["acc"],
        "val_loss": val["loss"] if val else None,
        "val_acc": val["acc"] if val else None,
        "val_top5": val["top5"] if val else None,
        "lr": stats["lr"],
        "time_s": round(stats["time"], 4),
        "samples_per_s": round(stats["samples"] / max(stats["time"], 1e-9), 1),
    }


def _rank_position(
    position: dict[str, Any] | None, ctx: distributed.Context
) -> dict[str, Any] | None:
    """This rank's share of an interrupted epoch's running sums (all of them on rank 0 when
    the number of processes changed: the epoch's totals stay right)."""
    if position is None:
        return None
    out = dict(position)
    for key in RUNNING_SUMS:
        values = position[key]
        if len(values) == ctx.world:
            out[key] = values[ctx.rank]
        else:
            total = sum(values[1:], values[0])
            out[key] = total if ctx.rank == 0 else total * 0
    return out


def eval_plan(n: int, batch: int, ctx: distributed.Context) -> data_mod.BatchPlan:
    """Every sample once, in order; each process takes its share of every batch."""
    plan = data_mod.BatchPlan(n, batch, ctx.world, ctx.rank, shuffle=False)
    full, rest = divmod(n, batch)
    plan.sizes = [batch] * full + ([rest] if rest else [])
    return plan


@torch.inference_mode()
def evaluate_split(
    net: Any,
    model: Any,
    split: data_mod.Split,
    plan: data_mod.BatchPlan,
    loss_fn: Any,
    place: dev.Placement,
    ctx: distributed.Context,
    targets: Any,
    n_classes: int,
    workers: int,
    cache: dict | None = None,
) -> dict[str, Any]:
    """Loss, top-1 and top-5 accuracy over a split, in eval mode, summed over processes."""
    model.eval()
    device = place.device
    sums = SUM_DTYPE[device.type == "mps"]
    loss_sum = torch.zeros((), dtype=sums, device=device)
    top1 = torch.zeros((), dtype=torch.int64, device=device)
    top5 = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    for x, y in data_mod.batches(split, plan, device, workers, None, cache):
        if y.shape[0] == 0:
            continue
        x = place.prepare_input(x)
        with place.autocast():
            out = net(x)
            loss = loss_fn(out, targets(y, out))
        out = out.float()
        best = out.topk(min(5, out.shape[-1]), dim=-1).indices
        hit = best == y.unsqueeze(-1)
        top1 += hit[:, 0].sum()
        top5 += hit.any(-1).sum()
        loss_sum += loss.to(sums) * y.shape[0]
        seen += y.shape[0]
    totals = distributed.all_sum(
        ctx,
        [
            loss_sum,
            top1.to(sums),
            top5.to(sums),
            torch.tensor(float(seen), dtype=sums, device=device),
        ],
    )
    total = max(1.0, float(totals[3]))
    return {
        "loss": float(totals[0]) / total,
        "acc": float(totals[1]) / total,
        "top5": float(totals[2]) / total if n_classes >= 5 else None,
        "samples": int(totals[3]),
    }


def train(
    spec: Any = None,
    *,
    config_files: list[str] = (),
    overrides: Any = None,
    resume: str | os.PathLike | None = None,
    stop_after: int | None = None,
    stream: Any = None,
    ignore_memory: bool = False,
) -> Run:
    """Train ``spec`` (a path, YAML text or netspec.Spec) as its ``train:`` section, the
    ``config_files`` and the ``overrides`` say (a dict such as ``{"epochs": 3,
    "data.val_split": 0.2}``); ``resume`` continues a run folder (or a .pt file).
    ``stop_after`` ends this call after that many epochs, resumably.  Raises SpecError or
    ConfigError (positioned diagnostics), CheckpointError, and NotEnoughMemory (before
    allocating) when the model, its gradients and one batch need more memory than is
    available (``ignore_memory=True`` goes ahead)."""
    spec, result, cfg, ckpt_path = config.resolve_run(spec, config_files, overrides, resume)
    ctx = distributed.from_environment()
    trainer = Trainer(spec, result, cfg, ctx, stream, ignore_memory)
    finished = False
    try:
        trainer.setup(ckpt_path)
        run = trainer.fit(stop_after)
        finished = True
        return run
    finally:
        # DistributedDataParallel (its reducer) must go before the process group does, or
        # the process can abort at exit
        trainer.net = trainer.eval_net = None
        trainer.loader_cache = {}
        if ctx.initialized:
            gc.collect()
        if finished and ctx.initialized:
            distributed.barrier(ctx)
        distributed.finish(ctx)
        output.unlock_run(trainer.lock)
        sys.stderr.flush()
