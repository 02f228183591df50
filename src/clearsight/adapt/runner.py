"""``clearsight adapt``: adapt a learned restorer to a folder of a user's own unlabeled images.

Methods:

* ``colabator`` (default): the student trains on pseudo-labels of an EMA teacher, kept in the optimal label
  pool and weighted per pixel by the coherence map (see :mod:`clearsight.adapt.colabator`), plus the
  scattering-model and contrast-perceptual terms on the real images and, with ``clean``, the supervised
  loss on synthetic pairs so that the network does not drift.
* ``coral``: the supervised loss on synthetic pairs (``clean`` is required) plus RSR's bounded CORAL loss
  between the bottleneck features of synthetic and real batches.
* ``rsr``: RSR/CID's two phases for the RSR network, with its encoder frozen. ``invariant``: the supervised
  loss on synthetic pairs with per-sample weights from StableNet's random-Fourier-feature weight learner on
  the pooled representation ``z`` (``reweight=False``: uniform weights). ``align``: the bounded CORAL loss
  between the covariances of the first decoder block's features on synthetic and real batches, with the
  supervised loss anchoring the decoder. ``phases`` orders them (RSR: ``invariant,align``; CID:
  ``align,invariant``) and splits the iterations evenly between them.

Every fifth target image is held out: never trained on, used to report the trend of NIQE and the haze score
of the teacher's output. The run checkpoints next to its output (``OUT.ckpt``) and resumes from it.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .._errors import ClearsightError
from ..io import load_image
from ..models.learned import _bf16_ok
from .colabator import (
    LabelPool,
    PoolEntry,
    block_map,
    brisque_quality,
    clear_probability,
    naturalness_quality,
    sharpness_quality,
    strength_candidates,
    strong_augment,
)
from .colabator import weight_map as make_weight_map
from .coral import coral_exp_loss
from .reweight import RFFWeightLearner

__all__ = ["AdaptConfig", "adapt", "MIN_IMAGES"]

#: Fewest usable target images (after holding out every fifth) that ``adapt`` accepts.
MIN_IMAGES = 4
#: Side of the held-out views on which progress is measured.
EVAL_SIZE = 256
#: Most pixels of a training image in ``views="crop"``: the size at which learned restorers run (``max_pixels``).
INFER_PIXELS = 300_000
#: Lowest haze score a strength candidate may reach: the 10th percentile of clean photos' haze scores
#: (``benchmarks/results/learned.json``); below it a label would be dehazed past what clean photos look like.
HAZE_FLOOR = 0.055


@dataclass
class AdaptConfig:
    """What ``adapt`` does. ``model`` is a registered learned model or a weights file."""

    model: str
    target: str
    out: str
    method: str = "colabator"
    iters: int = 500
    clean: str | None = None
    presets: dict[str, float] = field(
        default_factory=lambda: {"day_haze": 0.4, "dense_haze": 0.2, "night_haze": 0.2, "sand_dust": 0.2}
    )
    size: int = 128
    batch: int = 2
    lr: float = 5e-5
    ema: float | None = None  # None: 1 - 10 / iters, at most 0.999 (the teacher averages the last ~10 %)
    eval_every: int = 100
    ckpt_every: int = 50
    seed: int = 0
    amp: bool = True  # bf16 autocast where the CPU has native bf16; float32 elsewhere
    label_pool: bool = True
    weight_map: bool = True
    # the pool's global quality score: "sharpness", "brisque" (1 - BRISQUE / 100) or "naturalness"
    # (-(NIQE + BRISQUE / 10), on whole images: use it with views="crop")
    quality: str = "sharpness"
    # dehazing strengths s: each pseudo-label offered is the best (by `quality`) of x + s (teacher - x) whose haze
    # score stays at or above HAZE_FLOOR; None: the teacher's output as it is (Colabator)
    strengths: tuple[float, ...] | None = None
    # what the strengths scale: "teacher" (its current output, so strengths compound as the teacher follows the
    # student) or "initial" (the unadapted network's output, frozen: one fixed label per image)
    strength_of: str = "teacher"
    phases: str = "invariant,align"
    reweight: bool = True
    align_weight: float = 10.0
    # window radius (fraction of the side) of a locally affine fit of each pseudo-label to its input; -1: the
    # model's inference default; None: off (the default: it made CORUN worse, docs/adaptation.md)
    project_labels: float | None = None
    # training views of the real images: "resize" squeezes each whole image to size x size; "crop" keeps each
    # image at the scale the restorer infers at (at most INFER_PIXELS, aspect kept), labels the whole image with
    # the teacher (airlight estimated on the whole image, as at inference) and trains the student on aligned
    # size x size crops of it with that airlight
    views: str = "resize"
    # which teacher is written: "last" (after the last iteration) or "best": at iteration 0 and every `eval_every`
    # iterations the teacher restores `select_images` of the *training* images as `restore` runs it (inference
    # scale, the model's output projection) and the one with the lowest mean NIQE + BRISQUE / 10 is kept, the
    # unadapted network included. The held-out fifth is never used to choose.
    keep: str = "last"
    select_images: int = 8
    # keep="best" with select_withheld: the `select_images` images are taken out of training, so the teacher is
    # chosen on images it was not adapted on (a validation split of the target; the held-out fifth stays apart)
    select_withheld: bool = False
    # the label pool admits a pseudo-label only when the judge (clearsight.judging) finds it not harmed relative to
    # its input (colour cast, over-dehazing, halos, ...); an image without an admitted label trains towards itself
    # with zero pixel weight until one is admitted
    judge_labels: bool = True


def _admissible(x: torch.Tensor, y: torch.Tensor) -> tuple[bool, list[str]]:
    """Whether the pseudo-label ``y`` of the input ``x`` (``(1, 3, H, W)`` or ``(3, H, W)``) may enter the label
    pool: the judge finds no harm in it; with the harms it found."""
    from ..judging import judge_np

    def arr(t: torch.Tensor) -> np.ndarray:
        t = t[0] if t.dim() == 4 else t
        return np.ascontiguousarray(t.detach().float().clamp(0, 1).permute(1, 2, 0).numpy())

    v = judge_np(arr(x), arr(y))
    return v.ok, list(v.harms)


def _load_net(model: str):
    from ..models import weights_file
    from ..models._weights import load_weights

    path = weights_file(model)
    net, meta = load_weights(path)
    return net, meta | {"source": str(path)}


def _inference_scale(rgb: np.ndarray, size: int) -> np.ndarray:
    """``rgb`` at the scale a learned restorer runs it (at most :data:`INFER_PIXELS`), its shorter side at least
    ``size`` so that a training crop fits."""
    h, w = rgb.shape[:2]
    s = min(1.0, (INFER_PIXELS / (h * w)) ** 0.5)
    s = max(s, size / min(h, w))
    if abs(s - 1.0) < 1e-6:
        return rgb
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    return np.clip(cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC), 0, 1)


def _read_target(
    target: str, size: int, views: str = "resize"
) -> tuple[list[str], list[np.ndarray], list[str], list[np.ndarray]]:
    from ..degrade.dataset import image_files

    try:
        files = image_files(target)
    except FileNotFoundError as e:
        raise ClearsightError(str(e)) from None
    imgs, names = [], []
    for f in files:
        try:
            rgb = load_image(f).rgb
        except ClearsightError:
            continue  # unreadable files are skipped, not fatal
        rgb = rgb.astype(np.float32) / (255.0 if rgb.dtype == np.uint8 else 65535.0)
        if min(rgb.shape[:2]) < 16:
            continue
        # training views at `size` (as Colabator resizes to 288); held-out views at 256 for the metrics
        s = size if len(names) % 5 != 4 else EVAL_SIZE
        if views == "crop" and len(names) % 5 != 4:
            imgs.append(_inference_scale(rgb, size))
        else:
            interp = cv2.INTER_AREA if min(rgb.shape[:2]) > s else cv2.INTER_CUBIC
            imgs.append(np.clip(cv2.resize(rgb, (s, s), interpolation=interp), 0, 1))
        names.append(str(f))
    train = [(n, i) for k, (n, i) in enumerate(zip(names, imgs)) if k % 5 != 4]
    held = [(n, i) for k, (n, i) in enumerate(zip(names, imgs)) if k % 5 == 4]
    if len(train) < MIN_IMAGES:
        raise ClearsightError(
            f"{target}: {len(imgs)} usable images; adapt needs at least {MIN_IMAGES + 1} "
            "(every fifth is held out to measure progress)"
        )
    return [n for n, _ in train], [i for _, i in train], [n for n, _ in held], [i for _, i in held]


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)


def _clear_score():
    """The haze-free scorer: the shipped degradation classifier when there is one, else the dark-channel proxy."""
    from ..models._weights import load_weights
    from ..models.learned import WEIGHTS_DIR
    from .colabator import classifier_clear_probability

    path = WEIGHTS_DIR / "degclass_synth.safetensors"
    if path.is_file():
        net, _ = load_weights(path)
        return classifier_clear_probability(net.eval()), "degradation classifier"
    return clear_probability, "dark-channel proxy"


def _project(real: torch.Tensor, label: torch.Tensor, fraction: float, mode: str = "channel") -> torch.Tensor:
    """Each pseudo-label replaced by its best locally affine function of its real input (the projection that the
    restorer applies at inference, :mod:`clearsight.models.learned`, in its ``mode``), so the student never learns
    the blotches and invented texture of the teacher's raw output."""
    from ..models.learned import affine_project

    out = []
    for x, y in zip(real.float(), label):
        xi, yi = x.permute(1, 2, 0).numpy(), y.permute(1, 2, 0).numpy()
        out.append(torch.from_numpy(affine_project(xi, yi, xi, fraction, mode)).permute(2, 0, 1))
    return torch.stack(out).clamp(0, 1)


def _strongest_natural(x: torch.Tensor, y: torch.Tensor, strengths, quality, haze_score) -> torch.Tensor:
    """Of the strength candidates of label ``y`` (:func:`~clearsight.adapt.colabator.strength_candidates`), the
    one of best ``quality`` among those not dehazed past clean photos (haze score >= :data:`HAZE_FLOOR`; a
    strength at most 1 is always allowed)."""
    cands = strength_candidates(x.float(), y, strengths)
    ok = [c for s, c in zip(strengths, cands) if s <= 1 or float(haze_score(c)) >= HAZE_FLOOR] or [y]
    scores = [float(quality(c)) for c in ok]
    return ok[max(range(len(ok)), key=scores.__getitem__)]


def _air(airlight: torch.Tensor | None) -> dict:
    """Keyword arguments that pass ``airlight`` to a network, or none (the network estimates or assumes it)."""
    return {"airlight": airlight} if airlight is not None else {}


def _forward(net, x, airlight: torch.Tensor | None = None):
    f = getattr(net, "forward_train", None)
    return f(x, **_air(airlight)) if f is not None else {"image": net(x, **_air(airlight))}


def _crop_box(x: torch.Tensor, size: int, gen: torch.Generator) -> tuple[slice, slice, slice]:
    """A random ``size`` x ``size`` window of ``(C, H, W)``, as an index."""
    top = int(torch.randint(0, x.shape[1] - size + 1, (1,), generator=gen))
    left = int(torch.randint(0, x.shape[2] - size + 1, (1,), generator=gen))
    return slice(None), slice(top, top + size), slice(left, left + size)


@torch.no_grad()
def _evaluate(net, held: list[np.ndarray], amp: bool) -> dict[str, float]:
    from ..metrics import create_metric

    if not held:
        return {}
    niqe, haze = create_metric("niqe"), create_metric("haze_score")
    x = torch.stack([_t(h) for h in held])
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        y = net(x).float().clamp(0, 1)
    return {"niqe": float(niqe(y).mean()), "haze_score": float(haze(y).mean())}


def _selection_index(n: int, count: int) -> set[int]:
    """``count`` of ``n`` training images, evenly spaced: those keep="best" restores to choose the teacher."""
    return {int(i) for i in np.linspace(0, n - 1, min(count, n)).round()}


def _selection_views(names: list[str], count: int) -> list[np.ndarray]:
    """The keep="best" images among ``names``, as read (``restore`` scales them itself)."""
    return [load_image(names[i]).rgb for i in sorted(_selection_index(len(names), count))]


@torch.no_grad()
def _selection_score(net, arch: str, views: list[np.ndarray], amp: bool) -> float:
    """Mean ``NIQE + BRISQUE / 10`` (lower is better) of ``views`` restored by ``net`` as ``restore`` runs it."""
    from ..infer import restore_array
    from ..io import to_tensor
    from ..models import AFFINE_DEFAULTS, AFFINE_MODE_DEFAULTS
    from ..models.learned import NetworkRestorer

    precision = "bf16" if amp else "fp32"
    restorer = NetworkRestorer(
        copy.deepcopy(net), precision=precision, affine=AFFINE_DEFAULTS.get(arch),
        affine_mode=AFFINE_MODE_DEFAULTS.get(arch, "channel"),
    )  # fmt: skip
    scores = []
    for v in views:
        try:
            scores.append(-float(naturalness_quality(to_tensor(restore_array(v, restorer)[0]))))
        except ClearsightError:  # a flat output has no BRISQUE: a broken network is never kept
            return float("inf")
    score = float(np.mean(scores))
    return score if np.isfinite(score) else float("inf")


def _memory_plan(student, parts, student_pass, batch: int, budget: int | None, autocast):
    """Micro-batches for ``adapt`` within ``budget`` (see :mod:`clearsight.train.memory`): a forward and backward
    pass of one and of two samples of every part is measured on the student (its weights and buffers untouched,
    its gradients cleared), and the largest micro-batch that fits is chosen."""
    from torch import nn

    from ..train.memory import MemoryPlan, _choose, measure_pass, resident_memory

    plan_ = MemoryPlan(budget=budget, batch=batch, micro=[batch])
    bn = [m for m in student.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    plan_.exact = not bn
    plan_.note = f"{len(bn)} batch-norm layers in training mode see micro-batches" if bn else ""
    if budget is None:
        plan_.note = "no memory budget"
        return [batch], plan_
    buffers = {k: v.clone() for k, v in student.named_buffers()}
    rng = torch.get_rng_state()

    def run(n: int) -> None:
        with autocast():
            outs = [student_pass(x[:n], a[:n] if a is not None else None) for x, a in parts.values()]
            total = sum(o["image"].float().mean() for o in outs)
        total.backward()
        student.zero_grad(set_to_none=True)

    base = resident_memory()
    try:
        needs = measure_pass(run, (1, 2) if batch >= 2 else (1,), base)
        if needs is None:
            plan_.note = "peak memory cannot be measured on this system"
        else:
            _choose(plan_, needs, base or 0, budget, 0, lambda n: None)
    finally:
        torch.set_rng_state(rng)
        with torch.no_grad():
            for k, v in student.named_buffers():
                v.copy_(buffers[k])
    return plan_.micro, plan_


def adapt(cfg: AdaptConfig, progress: bool = True, log=print, max_memory: str | None = "auto") -> dict:
    """Run the adaptation ``cfg`` describes (resuming from ``cfg.out + '.ckpt'``); returns a summary.

    ``max_memory``: the process's memory budget (``auto``: 60% of the available memory, ``off``, or a size such
    as ``4G``); a batch that would not fit runs as micro-batches with the same gradient, as in training
    (:func:`clearsight.train.memory.accumulate_parts`). The plan is printed, recorded in the summary and written
    to ``cfg.out + '.memory.json'``."""
    from tqdm.auto import tqdm

    from ..models._weights import save_weights
    from ..train.losses import ContrastPerceptualLoss

    if cfg.method not in ("colabator", "coral", "rsr"):
        raise ClearsightError(f"unknown method {cfg.method!r}: choose colabator, coral or rsr")
    if cfg.method in ("coral", "rsr") and not cfg.clean:
        raise ClearsightError(f"--method {cfg.method} needs --clean DIR (synthetic pairs anchor the decoder)")
    phases = [p.strip() for p in cfg.phases.split(",") if p.strip()]
    if not phases or any(p not in ("invariant", "align") for p in phases):
        raise ClearsightError(f"--phases {cfg.phases!r}: a comma-separated list of invariant and align")
    if cfg.iters < 1:
        raise ClearsightError("--iters must be at least 1")
    if cfg.keep not in ("last", "best"):
        raise ClearsightError(f"--keep {cfg.keep!r}: choose last or best")
    if cfg.keep == "best" and cfg.select_images < 1:
        raise ClearsightError("select_images must be at least 1 with --keep best")
    if cfg.views not in ("resize", "crop"):
        raise ClearsightError(f"--views {cfg.views!r}: choose resize or crop")
    qualities = {"sharpness": sharpness_quality, "brisque": brisque_quality, "naturalness": naturalness_quality}
    if cfg.quality not in qualities:
        raise ClearsightError(f"--quality {cfg.quality!r}: choose sharpness, brisque or naturalness")
    global_quality = qualities[cfg.quality]
    if cfg.strengths is not None and (not cfg.strengths or any(not 0 < s <= 3 for s in cfg.strengths)):
        raise ClearsightError(f"--strengths {cfg.strengths}: one or more dehazing strengths in (0, 3]")
    if cfg.project_labels is not None and cfg.project_labels != -1 and not 0 <= cfg.project_labels <= 1:
        raise ClearsightError(f"project_labels={cfg.project_labels}: a fraction of the image side in [0, 1]")
    torch.manual_seed(cfg.seed)
    ema = cfg.ema if cfg.ema is not None else min(0.999, max(0.0, 1.0 - 10.0 / cfg.iters))
    student, meta = _load_net(cfg.model)
    names, train_imgs, held_names, held = _read_target(cfg.target, cfg.size, cfg.views)
    teacher = copy.deepcopy(student).eval().requires_grad_(False)
    project = cfg.project_labels
    from ..models import AFFINE_DEFAULTS, AFFINE_MODE_DEFAULTS

    project_mode = AFFINE_MODE_DEFAULTS.get(meta["arch"], "channel")  # as the restorer projects at inference
    if project == -1:
        project = AFFINE_DEFAULTS.get(meta["arch"])
    student.train()
    cp = ContrastPerceptualLoss("random")
    pool = LabelPool()
    clear_score, clear_name = _clear_score()
    haze_score, initial, anchored = None, None, {}
    refused: dict[str, int] = {}  # image -> pseudo-labels the judge kept out of the pool
    if cfg.strength_of not in ("teacher", "initial"):
        raise ClearsightError(f"strength_of={cfg.strength_of!r}: choose teacher or initial")
    if cfg.strengths and cfg.strength_of == "initial":
        initial = copy.deepcopy(teacher)  # frozen: the labels it gives are computed once per image
    if cfg.strengths:
        from ..metrics import create_metric

        haze_score = create_metric("haze_score")
    synth = None
    if cfg.clean:
        from ..degrade.dataset import SynthesisDataset

        synth = SynthesisDataset(cfg.clean, preset=dict(cfg.presets), crop=cfg.size, length=10**9, seed=cfg.seed,
                                 depth="random")  # fmt: skip
    feats: dict[str, torch.Tensor] = {}
    has_features = hasattr(student, "encoder")  # the RSR network returns its features and z itself
    if cfg.method == "rsr" and not has_features:
        raise ClearsightError("--method rsr needs an RSR network (e.g. --model rsr.haze)")
    if cfg.method == "coral" and not has_features:
        last = student.j_nets[-1].bottleneck if hasattr(student, "j_nets") else None
        if last is None:
            raise ClearsightError("--method coral supports CORUN and RSR models")
        last.register_forward_hook(lambda m, i, o: feats.__setitem__("f", o))
    weighter = None
    if cfg.method == "rsr":
        student.encoder.requires_grad_(False)  # frozen, as in CID: only the decoder adapts
        if cfg.reweight and "invariant" in phases:
            with torch.no_grad():
                dim = student.eval().forward_train(torch.zeros(1, 3, 64, 64))["z"].shape[1]
            student.train()
            weighter = RFFWeightLearner(dim, bank=max(64, 8 * cfg.batch), seed=cfg.seed)
        student.encoder.eval()  # its batch-norm statistics stay those of the pre-training
    opt = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=0.0)
    ckpt = Path(str(cfg.out) + ".ckpt")
    try:  # the checkpoint and the weights go beside --out: its folder must exist before any work is done
        ckpt.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ClearsightError(f"--out {cfg.out}: cannot create its folder ({e.strerror or e})") from None
    start, history = 0, []
    views = []
    if cfg.keep == "best":
        pick = _selection_index(len(names), cfg.select_images)
        views = _selection_views(names, cfg.select_images)
        if cfg.select_withheld:
            if len(names) - len(pick) < MIN_IMAGES:
                raise ClearsightError(
                    f"{cfg.target}: {len(names)} training images; withholding {len(pick)} for the choice of the "
                    f"teacher leaves fewer than {MIN_IMAGES} to adapt on"
                )
            names = [n for i, n in enumerate(names) if i not in pick]
            train_imgs = [a for i, a in enumerate(train_imgs) if i not in pick]
    best = None  # keep="best": {"iteration", "score", "state"} of the best teacher so far
    if ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        if state["config"] != asdict(cfg):
            raise ClearsightError(f"{ckpt} belongs to a run with other settings; delete it or change --out")
        student.load_state_dict(state["student"])
        teacher.load_state_dict(state["teacher"])
        opt.load_state_dict(state["optim"])
        pool.load_state_dict(state["pool"])
        if weighter is not None:
            weighter.load_state_dict(state["weighter"])
        start, history, best = state["iteration"], state["history"], state.get("best")
        refused.update(state.get("refused") or {})
        log(f"resuming at iteration {start}")
    amp = cfg.amp and _bf16_ok()
    from ..train.memory import accumulate_parts, peak_memory, resolve_budget

    budget = resolve_budget(max_memory)
    memory_log: list[dict] = []

    def _select(iteration: int, best: dict | None) -> dict:
        """Score the teacher for keep="best" (recorded in the history) and return the best entry so far."""
        score = _selection_score(teacher, meta["arch"], views, amp)
        history[-1]["selection"] = score
        if best is None or score < best["score"]:
            best = {"iteration": iteration, "score": score, "state": copy.deepcopy(teacher.state_dict())}
        return best

    if cfg.amp and not amp:
        log("this CPU has no native bf16 (emulated autocast is many times slower): running in float32")
    if start == 0:
        history.append({"iteration": 0, **_evaluate(teacher, held, amp)})
        if views:
            best = _select(0, best)
        log(f"held-out ({len(held)} images) before: " + json.dumps(history[-1]) + f"; haze-free score: {clear_name}")
    bar = tqdm(total=cfg.iters, initial=start, disable=not progress, desc=f"adapt ({cfg.method})", unit="it")
    gen = torch.Generator()

    def student_pass(x: torch.Tensor, air: torch.Tensor | None = None) -> dict:
        out = dict(_forward(student, x, air))
        if not has_features and "f" in feats:  # CORUN's bottleneck, caught by the hook
            out["features"] = feats.pop("f")
        return out

    micro: list[int] | None = None  # the plan's micro-batches, fixed at the first iteration this run executes
    for it in range(start, cfg.iters):
        gen.manual_seed(cfg.seed * 1_000_003 + it)
        idx = [(it * cfg.batch + b) % len(train_imgs) for b in range(cfg.batch)]
        crops = cfg.views == "crop"
        whole = [_t(train_imgs[i]) for i in idx]
        real = torch.stack(whole) if not crops else None  # crop mode: cut below, after the teacher saw the whole
        phase = phases[min(len(phases) - 1, it * len(phases) // cfg.iters)]
        # what the student sees, by part: "s" synthetic pairs, "r" real images (with the airlight the teacher used)
        parts: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
        ys = lab = w = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            if synth is not None:
                items = [synth[it * cfg.batch + b] for b in range(cfg.batch)]
                xs, ys = torch.stack([i["degraded"] for i in items]), torch.stack([i["clean"] for i in items])
                parts["s"] = (xs, None)
            if cfg.method == "colabator":
                air = None
                with torch.no_grad():
                    if crops:  # whole images of different sizes: one teacher pass each, at inference scale
                        hook = getattr(teacher, "estimate_airlight", None)
                        airs = [hook(x[None].float()) if hook is not None else None for x in whole]
                        if initial is None:  # with initial-anchored strengths the labels come from below
                            label = [teacher(x[None], **_air(a)).float().clamp(0, 1) for x, a in zip(whole, airs)]
                            if project:
                                label = [_project(x[None], y, project, project_mode) for x, y in zip(whole, label)]
                        air = torch.cat(airs) if airs[0] is not None else None
                    elif initial is None:
                        label = teacher(real).float().clamp(0, 1)
                        if project:
                            label = _project(real, label, project, project_mode)
                        label = list(label[:, None])
                    if initial is not None:
                        for b, i in enumerate(idx):
                            if names[i] not in anchored:
                                x = whole[b][None]
                                a = airs[b] if crops else None
                                y = initial(x, **_air(a)).float().clamp(0, 1)
                                anchored[names[i]] = _strongest_natural(x, y, cfg.strengths, global_quality, haze_score)
                        label = [anchored[names[i]] for i in idx]
                    elif cfg.strengths:
                        label = [_strongest_natural(x[None], y, cfg.strengths, global_quality, haze_score)
                                 for x, y in zip(whole, label)]  # fmt: skip
                    q = [float(global_quality(y)) for y in label]
                    c = [float(clear_score(y)) for y in label]
                    wmaps = [make_weight_map(block_map(y, sharpness_quality), block_map(y, clear_score)) for y in label]
                labels, weights, inputs = [], [], []
                for b, i in enumerate(idx):
                    wm = wmaps[b][0] if cfg.weight_map else torch.ones_like(wmaps[b][0])  # ablation: all pixels equal
                    cand = PoolEntry(label[b][0], q[b], c[b], wm)
                    ok = True
                    if cfg.judge_labels:
                        ok, _ = _admissible(whole[b], cand.label)
                        if not ok:
                            refused[names[i]] = refused.get(names[i], 0) + 1
                    if cfg.label_pool:
                        e = pool.offer(names[i], cand)[0] if ok else pool.entries.get(names[i])
                    else:  # ablation: always the newest
                        e = cand if ok else None
                    if e is None:  # nothing admitted for this image yet: no pixel of it counts
                        e = PoolEntry(whole[b].clone(), 0.0, 0.0, torch.zeros_like(wm))
                    x, y, wt = whole[b], e.label, e.weight
                    if crops:
                        sl = _crop_box(x, cfg.size, gen)
                        x, y, wt = x[sl], y[sl], wt[sl]
                        if bool(torch.rand((), generator=gen) < 0.5):
                            x, y, wt = x.flip(-1), y.flip(-1), wt.flip(-1)
                    inputs.append(x)
                    labels.append(y)
                    weights.append(wt)
                real = torch.stack(inputs)
                lab, w = torch.stack(labels), torch.stack(weights)
                strong = strong_augment(real, gen)
                parts["r"] = (strong, air.to(strong.dtype) if air is not None else None)
            elif cfg.method == "coral" or phase == "align":
                if real is None:  # crop mode: one random crop of each whole image
                    real = torch.stack([x[_crop_box(x, cfg.size, gen)] for x in whole])
                parts["r"] = (real, None)

        def loss_of(outs: dict[str, dict], phase=phase, ys=ys, parts=parts, lab=lab, w=w) -> tuple[torch.Tensor, dict]:
            """The iteration's loss from the student's outputs for the whole batch of each part."""
            loss = torch.zeros(())
            fs = None
            if "s" in outs:
                ps = outs["s"]
                if cfg.method == "rsr" and phase == "invariant" and weighter is not None:
                    per = (ps["image"].float() - ys).abs().mean((1, 2, 3))
                    with torch.autocast("cpu", enabled=False):  # the inner optimisation runs in float32
                        wts = weighter(ps["z"].float())
                    loss = loss + 2.5 * (wts.to(per) * per).sum()
                else:
                    loss = loss + 2.5 * F.l1_loss(ps["image"].float(), ys)
                fs = ps.get("features")
            if cfg.method == "colabator":
                pr = outs["r"]
                out = pr["image"].float()
                strong = parts["r"][0]
                loss = loss + 5 * ((out - lab).abs() * w).mean() + 0.2 * cp(out, lab, strong)
                if "transmission" in pr:
                    t, a = pr["transmission"].float(), pr["airlight"].float()
                    loss = loss + 0.005 * ((out * t + a * (1 - t) - strong).abs() * w).mean()
            elif "r" in outs:
                loss = loss + coral_exp_loss(fs.float(), outs["r"]["features"].float()) * cfg.align_weight
            return loss, {}

        def autocast():
            return torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp)

        def loss_amp(outs: dict[str, dict], loss_of=loss_of) -> tuple[torch.Tensor, dict]:
            with autocast():  # as in the unsplit step
                return loss_of(outs)

        if micro is None:
            micro, mem_plan = _memory_plan(student, parts, student_pass, cfg.batch, budget, autocast)
            log(mem_plan.describe())
            memory_log.append({"iteration": it, **mem_plan.as_dict()})
        opt.zero_grad(set_to_none=True)
        if len(micro) == 1:
            with autocast():
                outs = {k: student_pass(x, a) for k, (x, a) in parts.items()}
                loss, _ = loss_of(outs)
            loss.backward()
        else:
            loss, _ = accumulate_parts(
                {k: (lambda s, n, x=x, a=a: student_pass(x[s : s + n], a[s : s + n] if a is not None else None))
                 for k, (x, a) in parts.items()},
                micro, loss_amp, student, autocast,
            )  # fmt: skip
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for pt, ps_ in zip(teacher.parameters(), student.parameters()):
                if ps_.requires_grad:  # frozen parts stay bit-exact (x * d + x * (1 - d) can round)
                    pt.mul_(ema).add_(ps_.detach(), alpha=1 - ema)
        done = it + 1
        bar.update(1)
        bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
        if done % cfg.eval_every == 0 or done == cfg.iters:
            history.append({"iteration": done, **_evaluate(teacher, held, amp)})
            if views:
                best = _select(done, best)
            bar.write("held-out: " + json.dumps(history[-1]))
        if done % cfg.ckpt_every == 0 or done == cfg.iters:
            state = {
                "iteration": done,
                "student": student.state_dict(),
                "teacher": teacher.state_dict(),
                "optim": opt.state_dict(),
                "pool": pool.state_dict(),
                "weighter": weighter.state_dict() if weighter is not None else None,
                "history": history,
                "best": best,
                "refused": refused,
                "config": asdict(cfg),
            }
            tmp = ckpt.with_name(f".{ckpt.name}.tmp{os.getpid()}")
            torch.save(state, tmp)
            os.replace(tmp, ckpt)
    bar.close()
    if refused:
        log(f"the judge kept {sum(refused.values())} harmed pseudo-labels of {len(refused)} images out of the pool")
    kept = cfg.iters
    if best is not None:
        kept = best["iteration"]
        teacher.load_state_dict(best["state"])
        which = "withheld" if cfg.select_withheld else "training"
        log(f"kept the teacher of iteration {kept} (selection score {best['score']:.3f} on {len(views)} {which} "
            f"images; {history[0]['selection']:.3f} before adapting)")  # fmt: skip
    out = save_weights(
        teacher, cfg.out, meta["arch"], json.loads(meta.get("args", "{}")),
        description=f"{meta.get('description', meta['arch'])}; adapted ({cfg.method}) to {Path(cfg.target).name}",
        adapted_from=meta["source"], method=cfg.method, iterations=str(cfg.iters), kept_iteration=str(kept),
        history=history,
    )  # fmt: skip
    if memory_log:
        memory_log[-1]["peak_rss"] = peak_memory()
        Path(str(cfg.out) + ".memory.json").write_text(json.dumps(memory_log[-1], indent=1) + "\n")
    return {
        "weights": str(out),
        "memory": memory_log[-1] if memory_log else None,
        "labels_refused": refused,
        "history": history,
        "kept_iteration": kept,
        "train_images": len(train_imgs),
        "selection_withheld": cfg.keep == "best" and cfg.select_withheld,
        "held_out": len(held),
        "held_out_files": held_names,
    }
