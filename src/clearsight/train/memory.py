"""Keeping training within a memory budget: measure one micro-batch, split a batch that would not fit.

A batch that does not fit the budget is run as micro-batches with the same total gradient: the network's
outputs for the whole batch are first computed without gradients, micro-batch by micro-batch; the loss is
evaluated once on the whole batch and differentiated with respect to those outputs; then each micro-batch
is run again with gradients and its slice of the output gradient is propagated back
(:func:`accumulate`). The gradient is that of the unsplit batch for any loss, including terms that mix
samples (the contrast-perceptual ratio, UDAIR's cross-sample contrast, sample re-weighting), as long as the
network treats the samples of a batch independently; batch-norm layers in training mode and dropout do not
(they see micro-batches), and the plan says so. The price is one extra forward pass without gradients.

How much one micro-batch needs is measured, not guessed: the process's peak resident memory (Linux's
``VmHWM``, reset through ``/proc/self/clear_refs``) during a forward and backward pass of one and of two
samples gives a fixed part and a per-sample part. Where that cannot be read (not Linux), the batch runs
whole and the plan says that it was not measured.
"""

from __future__ import annotations

import copy
import math
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._errors import ClearsightError
from ..runtime import available_memory, peak_memory, resident_memory

__all__ = [
    "MemoryPlan",
    "parse_size",
    "format_size",
    "available_memory",
    "resident_memory",
    "peak_memory",
    "split_sizes",
    "accumulate",
    "accumulate_parts",
]

#: Share of the available memory that the default budget (``max_memory: auto``) allows: 0.8 let a 20-iteration
#: float32 run of corun_haze (planned peak 17.6 GB, 17.0 GB resident when killed) be killed once its loader and the
#: rest of the machine grew; 0.6 leaves room for them.
AUTO_SHARE = 0.6
#: Measured needs are multiplied by this before they are compared with the budget (allocator slack).
SAFETY = 1.2

_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str | int | float) -> int:
    """Bytes of ``'8G'``, ``'512M'``, ``'1.5GB'``, ``'2GiB'`` or a plain number of bytes."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return int(text)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(?:I?B)?\s*", str(text).upper())
    if not m:
        raise ClearsightError(f"memory size {text!r}: write it like 8G, 512M or 1.5GB")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def format_size(n: float) -> str:
    """``'1.3 GB'``-style text of a number of bytes (binary units)."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident size
        return True
    except OSError:
        return False


def split_sizes(batch: int, micro: int) -> list[int]:
    """``batch`` split into ``ceil(batch / micro)`` micro-batches as even as possible, largest first."""
    n = math.ceil(batch / max(1, micro))
    base, extra = divmod(batch, n)
    return [base + 1] * extra + [base] * (n - extra)


@dataclass
class MemoryPlan:
    """How a training batch runs within the memory budget, and the measurements behind the choice.

    Attributes:
        budget: bytes the training process may use (``None``: no limit was set or known).
        batch: samples per optimisation step (unchanged by the plan).
        micro: sizes of the micro-batches one step runs (``[batch]``: the batch runs whole).
        baseline: resident bytes before the measurement (model, optimiser, data).
        fixed, per_sample: measured need of a forward and backward pass, ``fixed + n * per_sample`` bytes
            above the baseline for ``n`` samples.
        loss_pass: measured need of the whole-batch loss pass (micro-batches only).
        predicted_peak: the peak the plan expects, with :data:`SAFETY`.
        exact: micro-batches give the unsplit gradient (see the module notes).
        measured: the needs were measured (Linux); otherwise the batch runs whole.
        note: one line for the log.
    """

    budget: int | None
    batch: int
    micro: list[int] = field(default_factory=list)
    baseline: int = 0
    fixed: int = 0
    per_sample: int = 0
    loss_pass: int = 0
    predicted_peak: int = 0
    exact: bool = True
    measured: bool = False
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if not self.measured:
            return f"memory: batch {self.batch} runs whole ({self.note})"
        parts = [
            f"memory: budget {format_size(self.budget) if self.budget else 'none'}",
            f"one pass needs {format_size(self.fixed)} + {format_size(self.per_sample)} per sample",
        ]
        if len(self.micro) == 1:
            parts.append(f"batch {self.batch} runs whole (peak about {format_size(self.predicted_peak)})")
        else:
            sizes = "/".join(str(m) for m in self.micro)
            how = "same gradient" if self.exact else "approximate: " + self.note
            parts.append(
                f"batch {self.batch} runs as {len(self.micro)} micro-batches of {sizes} "
                f"(peak about {format_size(self.predicted_peak)}; {how})"
            )
        return "; ".join(parts)


def resolve_budget(setting: str | None) -> int | None:
    """Bytes of a ``max_memory`` setting: ``auto`` (a safe share of the available memory), ``off`` or a size."""
    if setting is None or str(setting).lower() in ("off", "none", "0"):
        return None
    if str(setting).lower() == "auto":
        avail = available_memory()
        rss = resident_memory() or 0
        return int((avail + rss) * AUTO_SHARE) if avail else None
    return parse_size(setting)


def batch_independent(model: nn.Module) -> tuple[bool, str]:
    """Whether a network in training mode treats each sample of a batch on its own (no batch norm, no
    dropout); the reason when it does not."""
    bn = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    drop = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0]
    if bn:
        return False, f"{len(bn)} batch-norm layers normalise over each micro-batch"
    if drop:
        return False, "dropout draws its masks per micro-batch"
    return True, ""


def measure_pass(
    run: Callable[[int], None], sizes: tuple[int, ...] = (1, 2), base: int | None = None
) -> dict[int, int] | None:
    """Peak resident bytes above ``base`` (default: the current level) while ``run(n)`` runs, for each ``n`` of
    ``sizes``; ``None`` where the peak cannot be read or reset. Memory freed by one run stays with the process
    (the allocator keeps it) and is reused by the next, so every run is measured against the same ``base``."""
    base = resident_memory() if base is None else base
    if base is None or peak_memory() is None:
        return None
    out = {}
    for n in sizes:
        if not _reset_peak():
            return None
        run(n)
        out[n] = max(0, (peak_memory() or 0) - base)
    return out


def _split_pred(pred, size: int):
    """``(batch_part, global_part)`` of a network's training output: tensors whose first dimension is the batch,
    and the others (e.g. a learnt temperature), by key; a bare tensor is ``{'image': tensor}``."""
    if isinstance(pred, torch.Tensor):
        pred = {"image": pred}
    per, glob = {}, {}
    for k, v in pred.items():
        if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == size:
            per[k] = v
        else:
            glob[k] = v
    return per, glob


def accumulate(
    forward: Callable[[torch.Tensor], Any],
    x: torch.Tensor,
    micro: list[int],
    loss_fn: Callable[[Any], tuple[torch.Tensor, dict[str, float]]],
    model: nn.Module,
    autocast: Callable[[], Any],
    no_sync: Callable[[], Any] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """One step's gradient of ``loss_fn(forward(x))`` computed in micro-batches of ``micro`` samples.

    ``forward`` maps a micro-batch to the training output (a tensor or a dict of tensors); ``loss_fn`` takes the
    whole batch's output (same structure). Gradients are accumulated into the parameters' ``.grad`` (zero them
    before). The random state and the model's buffers are restored between the gradient-free and the gradient
    pass, so both see the same draws and buffers are updated once. Returns the loss and its logged terms.
    """
    single: list[bool] = []

    def run(s: int, n: int):
        out = forward(x[s : s + n])
        if not single:
            single.append(isinstance(out, torch.Tensor))
        return out

    def whole(outs: dict[str, Any]):
        return loss_fn(outs[""]["image"] if single[0] else outs[""])

    return accumulate_parts({"": run}, micro, whole, model, autocast, no_sync)


def accumulate_parts(
    parts: dict[str, Callable[[int, int], Any]],
    micro: list[int],
    loss_fn: Callable[[dict[str, Any]], tuple[torch.Tensor, dict[str, float]]],
    model: nn.Module,
    autocast: Callable[[], Any],
    no_sync: Callable[[], Any] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """:func:`accumulate` for a step whose loss mixes several batches of the same size run through ``model``
    (e.g. synthetic pairs and real images in ``clearsight adapt``): ``parts[k](start, n)`` runs samples
    ``start .. start + n`` of part ``k``; ``loss_fn`` gets ``{k: whole-batch output of part k}`` (dicts of
    tensors). The gradient is that of the unsplit step."""
    import contextlib

    no_sync = no_sync or contextlib.nullcontext
    starts = [sum(micro[:i]) for i in range(len(micro))]
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    states: dict[tuple[str, int], torch.Tensor] = {}
    outs: dict[str, list] = {k: [] for k in parts}
    with torch.no_grad():
        for k, fwd in parts.items():
            for s, n in zip(starts, micro):
                states[(k, s)] = torch.get_rng_state()
                with autocast():
                    outs[k].append(fwd(s, n))
    full: dict[str, dict[str, Any]] = {}
    leaves: dict[tuple[str, str], torch.Tensor] = {}
    for k in parts:
        pieces = [_split_pred(o, n) for o, n in zip(outs[k], micro)]
        full[k] = {}
        for key in pieces[0][0]:
            leaves[(k, key)] = torch.cat([p[0][key] for p in pieces]).detach().requires_grad_(True)
            full[k][key] = leaves[(k, key)]
        for key, v in pieces[0][1].items():
            if isinstance(v, torch.Tensor) and v.is_floating_point():
                leaves[(k, key)] = v.detach().clone().requires_grad_(True)
                full[k][key] = leaves[(k, key)]
            else:
                full[k][key] = v
    loss, terms = loss_fn(full)
    loss.backward()
    with torch.no_grad():
        for name, v in model.named_buffers():
            v.copy_(buffers[name])
    del outs, full
    last = (list(parts)[-1], len(micro) - 1)
    for k, fwd in parts.items():
        for i, (s, n) in enumerate(zip(starts, micro)):
            torch.set_rng_state(states[(k, s)])
            ctx = no_sync() if (k, i) != last else contextlib.nullcontext()
            with ctx:
                with autocast():
                    pred = fwd(s, n)
                per, glob = _split_pred(pred, n)
                tensors, grads = [], []
                for key, v in per.items():
                    g = leaves[(k, key)].grad if (k, key) in leaves else None
                    if g is not None and v.requires_grad:
                        tensors.append(v)
                        grads.append(g[s : s + n].to(v.dtype))
                if i == 0:  # outputs shared by the whole batch pass their gradient back once
                    for key, v in glob.items():
                        g = leaves[(k, key)].grad if (k, key) in leaves else None
                        if g is not None and isinstance(v, torch.Tensor) and v.requires_grad:
                            tensors.append(v)
                            grads.append(g.to(v.dtype))
                if tensors:
                    torch.autograd.backward(tensors, grads)
    return loss.detach(), terms


def plan(
    model: nn.Module,
    probe_batch: dict[str, torch.Tensor],
    batch: int,
    budget: int | None,
    step: Callable[[nn.Module, dict[str, torch.Tensor]], None],
    loss_pass: Callable[[nn.Module, int], None],
    extra_bytes: int = 0,
) -> MemoryPlan:
    """Measure a forward and backward pass of one and two samples of ``probe_batch`` on a copy of ``model``
    (``step(copy, batch_of_n)``) and choose the micro-batches of ``batch`` that keep the peak within ``budget``.

    ``extra_bytes`` is memory the run will add later (optimiser state, gradients); ``loss_pass(copy, batch)`` runs
    the whole-batch loss pass, measured only when the batch has to be split. Both passes run on the copy with the
    random state restored afterwards, so batch-norm statistics, codebooks and dropout draws of ``model`` are
    untouched. Raises a one-line
    :class:`ClearsightError` when even one sample does not fit.
    """
    plan_ = MemoryPlan(budget=budget, batch=batch, micro=[batch])
    exact, why = batch_independent(model)
    plan_.exact, plan_.note = exact, why
    if budget is None:
        plan_.note = "no memory budget"
        return plan_
    probe = copy.deepcopy(model).train()
    rng = torch.get_rng_state()

    def run(n: int) -> None:
        step(probe, {k: v[:n] for k, v in probe_batch.items()})
        probe.zero_grad(set_to_none=True)

    base = resident_memory()
    try:
        needs = measure_pass(run, (1, 2) if probe_batch["degraded"].shape[0] >= 2 else (1,), base)
        if needs is not None:
            _choose(plan_, needs, base or 0, budget, extra_bytes, lambda n: loss_pass(probe, n))
    finally:
        torch.set_rng_state(rng)
        probe = None  # free the copy before training starts
    if needs is None:
        plan_.note = "peak memory cannot be measured on this system"
    return plan_


def _choose(plan_: MemoryPlan, needs: dict[int, int], base: int, budget: int, extra_bytes: int, loss_pass) -> None:
    """Fill ``plan_`` from the measured ``needs``: the largest micro-batch that fits, and the loss pass's need."""
    batch = plan_.batch
    plan_.measured = True
    plan_.baseline = base
    per = max(needs.get(2, needs[1]) - needs[1], needs[1] // 4) if 2 in needs else needs[1]
    plan_.per_sample, plan_.fixed = per, max(0, needs[1] - per)
    room = budget - plan_.baseline - extra_bytes

    def need(n: int) -> int:
        return int(SAFETY * (plan_.fixed + n * plan_.per_sample))

    if need(1) > room:
        raise ClearsightError(
            f"one training sample needs about {format_size(need(1) + plan_.baseline + extra_bytes)}, more than the "
            f"memory budget of {format_size(budget)}: lower data.crop, use a smaller model, or raise --max-memory"
        )
    largest = min(batch, max(1, (room - int(SAFETY * plan_.fixed)) // max(1, int(SAFETY * plan_.per_sample))))
    plan_.micro = split_sizes(batch, largest)
    if len(plan_.micro) > 1:
        measured = measure_pass(loss_pass, (batch,), base)
        plan_.loss_pass = int(measured[batch]) if measured else 0
        if SAFETY * plan_.loss_pass > room:
            raise ClearsightError(
                f"the loss of a whole batch of {batch} needs about {format_size(plan_.loss_pass)}, more than the "
                f"memory budget of {format_size(budget)} allows: lower data.batch or data.crop"
            )
    plan_.predicted_peak = plan_.baseline + extra_bytes + max(need(plan_.micro[0]), int(SAFETY * plan_.loss_pass))


def record(plan_: MemoryPlan, path: str | os.PathLike, **extra: Any) -> None:
    """Write the plan (and ``extra`` fields such as the measured peak) as JSON to ``path``."""
    import json

    Path(path).write_text(json.dumps({**plan_.as_dict(), **extra}, indent=1) + "\n")
