"""``auto``: recognise what a photo needs, restore only that, and check the result for harm.

1. :mod:`clearsight.recognition` gives a calibrated probability for each of haze, night haze, sand-dust, low light,
   noise, rain, blur and clean, from the whole image (noise and blur are measured at full resolution).
2. Every degradation found (probability >= the recogniser's threshold) gets its restorer: night haze ->
   ``ffdnet.fast`` if noise was found, then ``dcp-night``; else low light (in a photo whose mean luma is
   under :attr:`Auto.dark_luma`) -> ``lowlight.lol`` then
   ``ffdnet.fast`` (brightening first, then denoising what it lifted, was better on the held-out
   ``lowlight/lol_train`` pairs than the reverse: 19.6 against 18.7 dB); else noise -> ``ffdnet.fast``; then
   sand-dust -> ``dcp-dust``, else haze -> ``dcp`` (after the denoiser: dehazing amplifies noise). Rain and blur
   are reported and left alone: no restorer here beats the input on them yet (``docs/auto.md``).
3. The no-harm guard: each step runs first on the preview and :func:`clearsight.judging.judge_np` compares its
   output with its input; a ``dcp``, ``dcp-night`` or ``dcp-dust`` that harms (colour cast, amplified noise, lost
   detail, clipping, over-dehazing, added haze, halos) is retried at the milder strengths of :attr:`Auto.milder`
   (a blend ``I + s (J - I)``, which for a dehazing is a higher transmission), and a step that harms at every
   strength is dropped; the report says which.

A photo in which nothing is found comes out unchanged (the output equals the input, up to the output format).
All decisions are taken on the whole image, so every tile of a large image runs the same steps with the same
global state, and a video keeps its first frame's steps (:meth:`Auto.freeze`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..priors.base import DARK_LUMA, Restorer, RestorerState, make_preview, mean_luma
from ..recognition import LABELS, Recognition
from ._recognise import RECOGNISER, load_recogniser, recognise, recognition_nets

__all__ = ["Auto", "Chain", "recognise", "load_recogniser", "recognition_nets", "RECOGNISER"]

#: Restorer of each degradation; ``None``: reported and left alone. Noise: the smaller denoiser (``ffdnet.fast``, half
#: the convolutions of ``ffdnet.denoise`` for 0.1 dB less on its validation; session 33, ``docs/auto.md``), so that
#: ``auto`` keeps to about 1 s per 1080p photo on CPUs without AMX.
RESTORERS = {
    "noise": "ffdnet.fast",
    "low_light": "lowlight.lol",
    "sand_dust": "dcp-dust",
    "night_haze": "dcp-night",
    "haze": "dcp",
    "rain": None,
    "blur": None,
}


def _create(name: str) -> Restorer:
    from . import create_model

    return create_model(name)


class Chain(Restorer):
    """Run registered restorers one after the other; the state nests one step's state in the previous one's."""

    description = "a fixed sequence of restorers"

    def __init__(
        self,
        steps: list[str],
        models: dict[str, Restorer] | None = None,
        name: str = "chain",
        strengths: dict[str, float] | None = None,
    ) -> None:
        self.steps = list(steps)
        self.models = models if models is not None else {}
        self.name = name
        self.strengths = dict(strengths or {})  # step -> strength below 1: x + s (step(x) - x) (Auto's milder steps)

    def model(self, step: str) -> Restorer:
        if step not in self.models:
            self.models[step] = _create(step)
        return self.models[step]

    @property
    def halo(self) -> int:
        return sum(self.model(s).halo for s in self.steps)

    @staticmethod
    def strengths_of(state: RestorerState) -> dict[str, float]:
        """The steps of a nested state that run at a strength below 1, and their strengths."""
        out, st = {}, state.inner
        while st is not None:
            if st.params.get("strength", 1.0) != 1.0:
                out[st.method] = st.params["strength"]
            st = st.inner
        return out

    @staticmethod
    def nest(steps: list[str], states: list[RestorerState]) -> RestorerState | None:
        """One state per step -> a nested state (step ``i + 1`` in the ``inner`` of step ``i``)."""
        inner = None
        for step, st in zip(reversed(steps), reversed(states)):
            if st.inner is not None:
                raise ValueError(f"{step}: a chained restorer cannot have an inner state")
            inner = RestorerState(step, st.reason, st.params, inner)
        return inner

    def prepare(self, preview: np.ndarray) -> RestorerState:
        cur, states = preview, []
        for s in self.steps:
            st = self.model(s).prepare(cur)
            if s in self.strengths:
                st = dataclasses.replace(st, params={**st.params, "strength": self.strengths[s]})
            out = self.model(s).process(cur, st)
            cur = out if s not in self.strengths else cur + self.strengths[s] * (out - cur)
            states.append(st)
        return RestorerState(self.name, "", {}, self.nest(self.steps, states))

    def process(self, x: np.ndarray, state: RestorerState) -> np.ndarray:
        st = state.inner
        x = np.ascontiguousarray(x, np.float32)
        while st is not None:
            y = self.model(st.method).process(x, RestorerState(st.method, st.reason, st.params))
            s = st.params.get("strength", 1.0)
            x = y if s == 1.0 else (x + s * (y - x)).astype(np.float32, copy=False)
            st = st.inner
        return x


class Auto(Restorer):
    """See the module docstring.

    Args:
        guard: check every step on the preview and drop those that harm (default on).
        recogniser: path of a recogniser file (default: the shipped one).
        milder: let the guard retry a harmed step at the milder strengths of :attr:`milder` before it drops it
            (default on; off: a harmed step is dropped, as before session 31).
    """

    name = "auto"
    description = (
        "recognises what a photo needs (noise, low light, haze, night haze, sand-dust) and restores only that; "
        "a clean photo is left unchanged; each step is checked for harm"
    )

    #: Steps whose harmed output the guard retries at these strengths before it drops the step: ``I + s (J - I)``.
    #: For ``dcp`` that is a dehazing with the higher transmission ``1 / (s / t + 1 - s)``, a milder one (session
    #: 31, ``docs/auto.md``). ``dcp-night`` too since session 32, when it stopped drawing rings round lamps (on
    #: validation 6 of the 7 harmed outputs pass at a milder strength). ``dcp-dust`` since session 35, when it became
    #: ``dcp`` and a white balance by the airlight's colour (a blend is then a higher transmission and a partial
    #: balance; on the ``sand_dust`` validation of ``benchmarks/dust.py`` 16.60 dB against 15.86 when dropped).
    milder: dict[str, tuple[float, ...]] = dict.fromkeys(("dcp", "dcp-night", "dcp-dust"), (0.6, 0.35))

    def __init__(self, guard: bool = True, recogniser: str | None = None, milder: bool = True) -> None:
        self.guard = bool(guard)
        self.milder = dict(type(self).milder) if milder else {}  # a copy: changing one instance's leaves the others
        self.recogniser = recogniser
        self.chain = Chain([], name="auto")

    @property
    def halo(self) -> int:
        return max(self.chain.model(s).halo for s in (RESTORERS["noise"], "dcp-night")) * 2

    @property
    def auto_tile_pixels(self) -> int:
        """Tile above 4 MP: the denoiser runs at full resolution (about 1 GB per megapixel in float32)."""
        return 4_000_000

    def plan(self, found: list[str]) -> tuple[list[str], list[str]]:
        """``(steps, notes)`` for the degradations found (see the module docstring for the order)."""
        from . import list_models

        steps, notes = [], []
        installed = set(list_models())

        def add(label: str) -> None:
            model = RESTORERS[label]
            if model is None:
                notes.append(f"{label} found, left alone (no restorer beats the input on it yet)")
            elif model not in installed:
                notes.append(f"{label} found, left alone ({model} is not installed)")
            elif model not in steps:
                steps.append(model)

        if "night_haze" in found:  # night dehazing brightens too; denoise first, it amplifies noise
            if "noise" in found:
                add("noise")
            add("night_haze")
        elif "low_light" in found:  # brighten, then denoise what brightening lifted (better than the reverse
            add("low_light")  # on the held-out lol_train pairs: 19.6 against 18.7 dB, docs/auto.md)
            add("noise")
        elif "noise" in found:
            add("noise")
        for label in ("sand_dust", "haze"):
            if label in found and "night_haze" not in found:
                add(label)
                break
        for label in ("rain", "blur"):
            if label in found:
                add(label)
        return steps, notes

    def _recognise(self, arr: np.ndarray) -> Recognition:
        if min(arr.shape[:2]) < 16:  # too small to measure anything: leave it alone
            return Recognition({k: float(k == "clean") for k in LABELS})
        return load_recogniser(self.recogniser)(arr)

    def prepare_image(self, arr: np.ndarray) -> RestorerState:
        return self._prepare(make_preview(arr), self._recognise(arr))

    def prepare(self, preview: np.ndarray) -> RestorerState:
        return self._prepare(preview, self._recognise(preview))

    #: ``lowlight.lol`` brightens only photos darker than this mean luma (:data:`~clearsight.priors.base.DARK_LUMA`).
    dark_luma = DARK_LUMA

    def _prepare(self, preview: np.ndarray, rec: Recognition) -> RestorerState:
        from ..judging import first_unharmed

        found, notes = list(rec.found), []
        luma = mean_luma(preview)
        if "low_light" in found and luma >= self.dark_luma:
            found.remove("low_light")
            notes.append(f"low_light found, left alone (mean luma {luma:.2f} >= {self.dark_luma}: not dark)")
        steps, plan_notes = self.plan(found)
        notes += plan_notes
        cur, kept, states = preview, [], []
        for name in steps:
            model = self.chain.model(name)
            st = model.prepare(cur)
            out = model.process(cur, st)
            if self.guard:
                strength, verdict = first_unharmed(cur, out, self.milder.get(name, ()))
                said = f"{verdict}".replace("harmed:", "harmed")
                if strength is None:
                    notes.append(f"{name} dropped: it {said}")
                    continue
                if strength != 1.0:
                    st = dataclasses.replace(st, params={**st.params, "strength": strength})
                    notes.append(f"{name} at strength {strength}: at full strength it {said}")
                    out = cur + strength * (out - cur)
            kept.append(name)
            states.append(st)
            cur = out
        found = ", ".join(f"{k} {rec.probabilities[k]:.2f}" for k in rec.found) or "nothing to restore"
        reason = f"found {found}" + (f"; {'; '.join(notes)}" if notes else "")
        params = {"recognition": dict(rec.probabilities), "steps": kept, "notes": notes}
        return RestorerState("+".join(kept) or "none", reason, params, Chain.nest(kept, states))

    def process(self, x: np.ndarray, state: RestorerState) -> np.ndarray:
        if state.inner is None:
            return np.ascontiguousarray(x, np.float32)
        return self.chain.process(x, state)

    def freeze(self, state: RestorerState) -> tuple[Restorer, RestorerState]:
        """A restorer that runs ``state``'s steps on every frame (re-estimating each step's global state), and
        ``state`` in its form: a video keeps its first frame's decisions."""
        steps = list(state.params.get("steps", []))
        strengths = Chain.strengths_of(state)  # a step the guard ran milder stays milder on every frame
        chain = Chain(steps, self.chain.models, name=f"auto->{state.method}", strengths=strengths)
        return chain, dataclasses.replace(state, method=chain.name)
