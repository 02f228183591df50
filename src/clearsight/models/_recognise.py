"""The shipped real-photo recogniser (:mod:`clearsight.recognition`) and the networks its features use, loaded once.

``auto`` (:mod:`clearsight.models.auto`, which re-exports these) acts on what it finds, and UDAIR's gate
(:data:`clearsight.models.learned.GATE_CONFIRM`) asks it before some of its calls; this module imports neither, so
that both can import it.
"""

from __future__ import annotations

from functools import lru_cache

from ..recognition import Recogniser, Recognition, image_array
from ._weights import WEIGHTS_DIR

__all__ = ["RECOGNISER", "load_recogniser", "recognise", "recognition_nets"]

#: The shipped recogniser (``recipes/recogniser.py``; card ``recogniser_real.md``).
RECOGNISER = WEIGHTS_DIR / "recogniser_real.npz"


@lru_cache(maxsize=1)
def recognition_nets():
    """The networks the recogniser's features use: the shipped denoiser (its noise-level estimator) and the
    synthetic degradation classifier."""
    from ._weights import load_weights

    ffd, _ = load_weights(WEIGHTS_DIR / "ffdnet_denoise.safetensors")
    deg, _ = load_weights(WEIGHTS_DIR / "degclass_synth.safetensors")
    return ffd.eval(), deg.eval()


@lru_cache(maxsize=4)
def load_recogniser(path: str | None = None) -> Recogniser:
    """The recogniser in ``path`` (default: the shipped one), with its networks, loaded once."""
    return Recogniser.load(path or RECOGNISER, nets=recognition_nets())


def recognise(image, path: str | None = None) -> Recognition:
    """What ``image`` needs (``cs.recognise``): a file path, an ``(H, W, 3)`` array (uint8, uint16 or float in
    [0, 1]) or a ``(3, H, W)`` / ``(1, 3, H, W)`` tensor in [0, 1]. Returns a
    :class:`~clearsight.recognition.Recognition` (``.found``, ``.probabilities``)."""
    return load_recogniser(path)(image_array(image))
