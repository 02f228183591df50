"""The trainer: iterations, AdamW, warm-up + cosine, EMA, gradient clipping, validation, logs, exact resume, DDP.

One entry point serves one process and ``torchrun`` (``WORLD_SIZE`` > 1: gloo on CPU, NCCL on GPU). A run
directory holds ``checkpoint.pt`` (model, EMA, optimiser, iteration, RNG states; written atomically every
``ckpt_every`` iterations), ``train_log.csv``, ``val_log.csv``, ``config.yaml`` and, at the end,
``ema.safetensors`` (the exported EMA weights). Starting a run whose directory holds a checkpoint resumes it;
because every batch is a function of the iteration (see :class:`~clearsight.train.data.IterationBatches`),
a resumed run reproduces the uninterrupted one.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import hashlib
import json
import math
import os
import random
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch import nn
from torch.utils.data import DataLoader

from .._errors import ClearsightError
from ..models.learned import _bf16_ok
from .config import TrainConfig, config_to_dict
from .data import IterationBatches, build_train_dataset, build_val_items
from .losses import RestorationLoss
from .memory import MemoryPlan, accumulate, peak_memory, record, resolve_budget
from .memory import plan as plan_memory

__all__ = ["Trainer", "train"]

_LOG_FIELDS = ["iteration", "lr", "loss", "l1", "asm", "contrast", "cscl", "ident", "seconds_per_it"]


class _TrainForward(nn.Module):
    """Calls ``forward_train`` when the model has one, so DDP's hooks see it as ``forward``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        f = getattr(self.model, "forward_train", None)
        return f(x) if f is not None else self.model(x)


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)  # loader workers run side by side; threads inside each would oversubscribe


def _checksum(model: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


class Trainer:
    """Train ``cfg.model`` on ``cfg.data`` as ``cfg`` says; :meth:`fit` runs (or resumes) to the end.

    Args:
        cfg: the run's configuration.
        progress: show a progress bar (rank 0 only).
        stop_after: stop (as if killed) once this many iterations are done in total; for tests and for
            splitting a long run across sessions. The checkpoint written at that point resumes it.
        time_limit: stop cleanly, with a checkpoint, after this many seconds (rank 0's clock decides).
        max_memory: memory budget of the training process (``auto``, ``off`` or a size such as ``8G``; default
            ``cfg.max_memory``). A batch that would not fit runs as micro-batches with the same gradient
            (:mod:`clearsight.train.memory`); the choice is printed and written to ``out/memory.json``.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        progress: bool = True,
        stop_after: int | None = None,
        time_limit: float | None = None,
        max_memory: str | None = None,
    ) -> None:
        from ..models import build_arch

        self.cfg, self.progress, self.stop_after, self.time_limit = cfg, progress, stop_after, time_limit
        self.max_memory = max_memory if max_memory is not None else cfg.max_memory
        self.plan: MemoryPlan | None = None
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        want = cfg.device
        if want == "auto":
            want = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(f"cuda:{local}" if want == "cuda" else want)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        # bf16 autocast on a CPU without native bf16 is emulated and many times slower than float32
        self._amp = cfg.amp == "bf16" and (self.device.type != "cpu" or _bf16_ok())
        if cfg.amp == "bf16" and not self._amp:
            warnings.warn("this CPU has no native bf16: training in float32 instead of bf16 autocast", stacklevel=2)
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.out = Path(cfg.out)
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        self.model = build_arch(cfg.model.name, **cfg.model.args)
        if cfg.model.init:
            from safetensors.torch import load_file

            state, own = load_file(cfg.model.init), self.model.state_dict()
            # prototype banks depend on the task list and are refitted at the end: a fine-tune that adds a task
            # starts from every other weight
            skip = [k for k, v in state.items() if k.split(".")[-1].startswith("proto_") and k in own
                    and v.shape != own[k].shape]  # fmt: skip
            for k in skip:
                state[k] = own[k]
            # a UDAIR identifier is trained apart (recipes/udair_identifier.py): kept when model.args asks for
            # one, else left out (a fine-tune changes the task list or the restoration, not the classifier)
            state = {k: v for k, v in state.items() if not k.startswith("identifier.") or k in own}
            self.model.load_state_dict(state)
        self.model.to(self.device)
        if cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.ema = copy.deepcopy(self.model).requires_grad_(False).eval()
        self._check_prototype_tasks()  # fail now, not after the last iteration
        lc = cfg.loss
        self.loss = RestorationLoss(lc.l1, lc.asm, lc.contrast, lc.features, lc.cscl, lc.ident).to(self.device)
        o = cfg.optim
        self.opt = torch.optim.AdamW(
            self.model.parameters(), lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay
        )
        self.weighter = self._build_weighter()
        self.start = 0
        self._maybe_resume()
        fwd = _TrainForward(self.model)
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            fwd = nn.parallel.DistributedDataParallel(fwd, device_ids=ids)
        self.forward = fwd

    def _build_weighter(self) -> nn.Module | None:
        """The sample-weight learner of ``loss.reweight`` (its memory bank is part of the checkpoint)."""
        mode = self.cfg.loss.reweight
        if mode == "none":
            return None
        probe = _TrainForward(self.model).eval()
        with torch.no_grad():
            out = probe(torch.zeros(1, 3, 64, 64, device=self.device))
        self.model.train()
        if not isinstance(out, dict) or "z" not in out:
            raise ClearsightError(f"loss.reweight={mode} needs a model that returns a representation z (e.g. rsr)")
        if mode == "density":
            return None
        from ..adapt.reweight import RFFWeightLearner

        return RFFWeightLearner(out["z"].shape[1], bank=max(64, 4 * self.cfg.data.batch), seed=self.cfg.seed)

    def sample_weights(self, pred, it: int) -> torch.Tensor | None:
        """Per-sample loss weights (summing to one) for this batch, or ``None`` (uniform)."""
        mode = self.cfg.loss.reweight
        if mode == "none":
            return None
        z = pred["z"].detach().float().cpu()
        if mode == "rff":
            return self.weighter(z)
        from ..adapt.reweight import density_ratio_weights

        return density_ratio_weights(z, iters=100, seed=self.cfg.seed * 100_003 + it)

    # -------------------------------------------------------------------------------------- schedule
    def lr_at(self, it: int) -> float:
        """Learning rate of iteration ``it`` (0-based): linear warm-up, then cosine from ``lr`` to ``min_lr``."""
        o = self.cfg.optim
        if o.warmup and it < o.warmup:
            return o.lr * (it + 1) / o.warmup
        frac = (it - o.warmup) / max(1, o.iterations - o.warmup)
        return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1 + math.cos(math.pi * min(1.0, frac)))

    # -------------------------------------------------------------------------------------- checkpoints
    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def _save_checkpoint(self, iteration: int) -> None:
        if self.rank != 0:
            return
        state = {
            "iteration": iteration,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optim": self.opt.state_dict(),
            "weighter": self.weighter.state_dict() if self.weighter is not None else None,
            "config": config_to_dict(self.cfg),
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": np.random.get_state(),
                "python": random.getstate(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
        }
        tmp = self.checkpoint_path.with_name(f".checkpoint.tmp{os.getpid()}")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint_path)

    def _maybe_resume(self) -> None:
        if not self.checkpoint_path.is_file():
            return
        state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
        if state["config"]["model"] != config_to_dict(self.cfg.model):
            raise ClearsightError(
                f"{self.checkpoint_path} was trained with another model config; choose a new out= or delete it"
            )
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["optim"])
        if self.weighter is not None and state.get("weighter") is not None:
            self.weighter.load_state_dict(state["weighter"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.start = int(state["iteration"])

    # -------------------------------------------------------------------------------------- logs
    def _open_logs(self):
        if self.rank != 0:
            return None
        path = self.out / "train_log.csv"
        rows = []
        if self.start and path.is_file():  # drop what was logged after the checkpoint we resume from
            with path.open() as f:
                rows = [r for r in csv.DictReader(f) if int(r["iteration"]) <= self.start]
        f = path.open("w", newline="")
        w = csv.DictWriter(f, fieldnames=_LOG_FIELDS)
        w.writeheader()
        w.writerows(rows)
        f.flush()
        (self.out / "config.yaml").write_text(yaml.safe_dump(config_to_dict(self.cfg), sort_keys=False))
        return f, w

    def _tensorboard(self):
        if self.rank != 0 or not self.cfg.tensorboard:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:  # tensorboard is optional
            return None
        return SummaryWriter(str(self.out / "tb"))

    # -------------------------------------------------------------------------------------- validation
    @torch.no_grad()
    def validate(self, items: list[dict[str, torch.Tensor]]) -> dict[str, float]:
        """Mean of each ``val_metrics`` entry over ``items`` for the EMA model (and the degraded input).

        Per-image PSNR is capped at 60 dB, so an identity item (a ``clean`` preset input equal to its target)
        does not make the mean infinite."""
        from ..metrics import create_metric

        metrics = {m: create_metric(m) for m in self.cfg.val_metrics}
        scores: dict[str, list[float]] = {m: [] for m in metrics}
        scores.update({f"input_{m}": [] for m in metrics})
        amp = self._amp
        for k in range(0, len(items), 4):
            chunk = items[k : k + 4]
            x = torch.stack([c["degraded"] for c in chunk]).to(self.device)
            y = torch.stack([c["clean"] for c in chunk])
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=amp):
                out = self.ema(x)
            out = out.float().clamp(0, 1).cpu()
            for m, f in metrics.items():
                cap = 60.0 if m == "psnr" else float("inf")
                scores[m] += f(out, y).clamp(max=cap).tolist()
                scores[f"input_{m}"] += f(x.cpu(), y).clamp(max=cap).tolist()
        return {k: float(np.mean(v)) for k, v in scores.items()}

    def _log_val(self, iteration: int, res: dict[str, float]) -> None:
        path = self.out / "val_log.csv"
        rows = []
        if path.is_file():
            with path.open() as f:
                rows = [r for r in csv.DictReader(f) if int(r["iteration"]) < iteration]
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["iteration", *res])
            w.writeheader()
            w.writerows(rows)
            w.writerow({"iteration": iteration, **{k: f"{v:.5f}" for k, v in res.items()}})

    # -------------------------------------------------------------------------------------- EMA
    @torch.no_grad()
    def _update_ema(self) -> None:
        d = self.cfg.ema
        ep = list(self.ema.parameters())
        mp = [p.detach() for p in self.model.parameters()]
        torch._foreach_mul_(ep, d)
        torch._foreach_add_(ep, mp, alpha=1 - d)
        for eb, mb in zip(self.ema.buffers(), self.model.buffers()):
            eb.copy_(mb)

    # -------------------------------------------------------------------------------------- memory
    def plan_memory(self, dataset) -> MemoryPlan:
        """Measure one micro-batch and choose how the batch runs within the budget (see :mod:`.memory`)."""
        cfg = self.cfg
        budget = resolve_budget(self.max_memory)
        if budget is not None and str(self.max_memory).lower() == "auto" and self.world > 1:
            budget //= int(os.environ.get("LOCAL_WORLD_SIZE", self.world))  # the processes share the machine
        states = (torch.get_rng_state(), np.random.get_state(), random.getstate())
        try:
            items = [dataset[i] for i in range(min(2, cfg.data.batch))]
        finally:
            torch.set_rng_state(states[0])
            np.random.set_state(states[1])
            random.setstate(states[2])
        probe_batch = {k: torch.stack([it[k] for it in items]).to(self.device) for k in items[0]}
        amp = self._amp

        def inputs(b: dict[str, torch.Tensor]) -> torch.Tensor:
            x = b["degraded"]
            return x.contiguous(memory_format=torch.channels_last) if cfg.channels_last else x

        def probe_loss(pred, b: dict[str, torch.Tensor]) -> torch.Tensor:
            try:
                return self.loss(pred, b)[0]
            except ValueError:  # a term that needs a whole batch (UDAIR's cross-sample contrast needs two
                image = pred if isinstance(pred, torch.Tensor) else pred["image"]  # samples of every task)
                return (image.float() - b["clean"]).abs().mean()

        def step(model: nn.Module, b: dict[str, torch.Tensor]) -> None:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=amp):
                pred = _TrainForward(model)(inputs(b))
            probe_loss(pred, b).backward()

        def loss_pass(model: nn.Module, n: int) -> None:
            one = {k: v[:1] for k, v in probe_batch.items()}
            with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=amp):
                pred = _TrainForward(model)(inputs(one))
            rep = lambda v: v.repeat(n, *([1] * (v.dim() - 1))) if v.dim() else v  # noqa: E731
            if isinstance(pred, torch.Tensor):
                pred = rep(pred).requires_grad_(True)
            else:
                pred = {k: rep(v).requires_grad_(v.is_floating_point()) if isinstance(v, torch.Tensor) else v
                        for k, v in pred.items()}  # fmt: skip
            probe_loss(pred, {k: rep(v) for k, v in one.items()}).backward()

        params = sum(p.numel() * p.element_size() for p in self.model.parameters())
        plan = plan_memory(self.model, probe_batch, cfg.data.batch, budget, step, loss_pass, extra_bytes=3 * params)
        previous = self.out / "memory.json"
        if self.start and previous.is_file():  # a resumed run keeps its micro-batches (exact resume) if they fit
            old = json.loads(previous.read_text())
            fits = plan.budget is None or old.get("predicted_peak", 0) <= plan.budget
            if old.get("batch") == cfg.data.batch and fits and old.get("micro"):
                plan.micro = list(old["micro"])
                plan.predicted_peak = max(plan.predicted_peak, old.get("predicted_peak", 0))
        self.model.zero_grad(set_to_none=True)
        return plan

    # -------------------------------------------------------------------------------------- main loop
    def fit(self) -> dict[str, Any]:
        """Train from the current iteration to ``optim.iterations``; returns a summary (last losses, paths)."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        total = cfg.optim.iterations
        end = min(total, self.stop_after) if self.stop_after is not None else total
        dataset = build_train_dataset(cfg.data, cfg.seed)
        self.plan = self.plan_memory(dataset)
        if self.rank == 0:
            print(self.plan.describe(), file=sys.stderr, flush=True)
            record(self.plan, self.out / "memory.json")
        val_items = build_val_items(cfg.data, cfg.seed) if self.rank == 0 else []
        workers = cfg.data.workers
        if workers < 0:
            workers = max(1, min(15, (os.cpu_count() or 2) // self.world - 1))
        loader = DataLoader(
            dataset,
            batch_sampler=IterationBatches(self.start, end, cfg.data.batch, self.rank, self.world),
            num_workers=workers,
            worker_init_fn=_one_thread if workers else None,
            prefetch_factor=4 if workers else None,
            pin_memory=self.device.type == "cuda",
        )
        logs = self._open_logs()
        tb = self._tensorboard()
        bar = tqdm(
            total=total, initial=self.start, disable=not self.progress or self.rank != 0, desc=cfg.name,
            unit="it", dynamic_ncols=True,
        )  # fmt: skip
        amp = self._amp
        self.model.train()
        last: dict[str, float] = {}
        t_start = t_last = time.time()
        it_last = self.start
        reached = self.start
        for it, batch in zip(range(self.start, end), loader):
            lr = self.lr_at(it)
            for g in self.opt.param_groups:
                g["lr"] = lr
            batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            x = batch["degraded"]
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            self.opt.zero_grad(set_to_none=True)
            if len(self.plan.micro) > 1:
                loss, terms = self._micro_step(x, batch, it)
            else:
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=amp):
                    pred = self.forward(x)
                loss, terms = self.loss(pred, batch, self.sample_weights(pred, it))
                self._check_finite(loss, it)
                loss.backward()
            if cfg.optim.clip > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.clip)
            self.opt.step()
            self._update_ema()
            done = reached = it + 1
            last = {"loss": float(loss.detach()), **terms}
            bar.update(1)
            if self.rank == 0 and (done % cfg.log_every == 0 or done == end):
                now = time.time()
                row = {"iteration": done, "lr": f"{lr:.3e}", "loss": f"{last['loss']:.6f}",
                       "seconds_per_it": f"{(now - t_last) / max(1, done - it_last):.4f}"}  # fmt: skip
                row.update({k: f"{v:.6f}" for k, v in terms.items()})
                t_last, it_last = now, done
                logs[1].writerow(row)
                logs[0].flush()
                bar.set_postfix(loss=f"{last['loss']:.4f}")
                if tb is not None:
                    for k, v in last.items():
                        tb.add_scalar(f"train/{k}", v, done)
            if self.rank == 0 and val_items and (done % cfg.val_every == 0 or done == total):
                res = self.validate(val_items)
                self._log_val(done, res)
                bar.write(f"iteration {done}: " + ", ".join(f"{k} {v:.4f}" for k, v in res.items()))
                if tb is not None:
                    for k, v in res.items():
                        tb.add_scalar(f"val/{k}", v, done)
            out_of_time = self._out_of_time(t_start)
            if done % cfg.ckpt_every == 0 or done == end or out_of_time:
                self._save_checkpoint(done)
            if out_of_time:
                bar.write(f"time limit reached at iteration {done}; run the same command again to resume")
                break
        bar.close()
        if logs is not None:
            logs[0].close()
        if tb is not None:
            tb.close()
        finished = reached >= total
        summary = {"iterations": reached, "finished": finished, "last": last, "peak_memory": peak_memory()}
        if self.rank == 0 and self.plan is not None:
            record(self.plan, self.out / "memory.json", peak_rss=summary["peak_memory"])
        if finished:
            summary.update(self._finish())
        if self.world > 1:
            dist.barrier()
        return summary

    @staticmethod
    def _check_finite(loss: torch.Tensor, it: int) -> None:
        if not torch.isfinite(loss):
            raise ClearsightError(f"the loss became {float(loss)} at iteration {it + 1}; lower optim.lr")

    def _micro_step(self, x: torch.Tensor, batch: dict[str, torch.Tensor], it: int):
        """The gradient of one batch, accumulated over the plan's micro-batches (the same as unsplit)."""

        def loss_fn(pred):
            loss, terms = self.loss(pred, batch, self.sample_weights(pred, it))
            self._check_finite(loss, it)
            return loss, terms

        def autocast():
            return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self._amp)

        no_sync = getattr(self.forward, "no_sync", None)
        return accumulate(self.forward, x, self.plan.micro, loss_fn, self.model, autocast, no_sync)

    def _check_prototype_tasks(self) -> None:
        """A model with a per-task prototype bank (UDAIR) needs the data presets to be its task list, in order."""
        tasks = list(getattr(getattr(self.ema, "config", None), "tasks", ()) or ())
        if tasks and list(self.cfg.data.presets) != tasks:
            raise ClearsightError(
                f"model.args.tasks {tasks} must match data.presets {list(self.cfg.data.presets)} (same order)"
            )

    @torch.no_grad()
    def _fit_prototypes(self, batches: int = 16) -> None:
        """Fill the EMA model's source prototype bank (UDAIR) from fresh training crops of every task, cropped to
        the model's ``proto_size`` (training crops may be larger; the task list was checked in ``__init__``)."""
        data = dataclasses.replace(self.cfg.data, crop=self.ema.config.proto_size)
        ds = build_train_dataset(data, self.cfg.seed + 104_729)

        def gen():  # float32: a few batches, once
            for b in range(batches):
                items = [ds[b * data.batch + k] for k in range(data.batch)]
                yield {
                    "degraded": torch.stack([i["degraded"] for i in items]).to(self.device),
                    "task": torch.stack([i["task"] for i in items]),
                }

        self.ema.fit_prototypes(gen())

    def _out_of_time(self, t_start: float) -> bool:
        if self.time_limit is None:
            return False
        flag = torch.tensor([float(time.time() - t_start > self.time_limit)])
        if self.world > 1:  # every rank must stop at the same iteration
            if self.device.type == "cuda":
                flag = flag.to(self.device)
            dist.broadcast(flag, 0)
        return bool(flag.item())

    def _finish(self) -> dict[str, Any]:
        from ..models._weights import save_weights

        out: dict[str, Any] = {}
        if self.rank == 0 and getattr(getattr(self.ema, "config", None), "tasks", ()):
            self._fit_prototypes()
        (self.out / f"rank{self.rank}.json").write_text(json.dumps({"checksum": _checksum(self.model)}) + "\n")
        if self.rank == 0:
            path = save_weights(
                self.ema, self.out / "ema.safetensors", self.cfg.model.name, self.cfg.model.args,
                iterations=str(self.cfg.optim.iterations), config=yaml.safe_dump(config_to_dict(self.cfg)),
            )  # fmt: skip
            out["weights"] = str(path)
        return out


def train(
    cfg: TrainConfig,
    progress: bool = True,
    stop_after: int | None = None,
    time_limit: float | None = None,
    max_memory: str | None = None,
) -> dict[str, Any]:
    """Build a :class:`Trainer` and run it; tears the process group down afterwards under torchrun."""
    try:
        trainer = Trainer(cfg, progress=progress, stop_after=stop_after, time_limit=time_limit, max_memory=max_memory)
        return trainer.fit()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
