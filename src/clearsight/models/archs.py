"""Trainable architectures behind one registry: name -> builder ``(**args) -> nn.Module``.

Each builder imports its network lazily, so listing the registry costs nothing. A weights file names its
architecture and arguments in its metadata (:mod:`clearsight.models._weights`), which is how ``restore
--weights FILE`` rebuilds the network.
"""

from __future__ import annotations

from collections.abc import Callable

from .._registry import Registry

__all__ = ["ARCHS", "build_arch"]

#: Trainable architectures: name -> builder ``(**args) -> nn.Module`` (used by :mod:`clearsight.train`).
ARCHS: Registry[Callable[..., object]] = Registry("architecture")


def build_arch(name: str, **args):
    """Build the untrained network ``name`` of :data:`ARCHS` with ``args`` (e.g. ``preset="cpu"``)."""
    return ARCHS.get(name)(**args)


def _config(cls, preset: str | None, label: str):
    """The configuration of a preset of ``cls`` (``paper``, ``cpu``, ``tiny``, and ``fast`` where it has one), or its
    defaults without one."""
    presets = tuple(p for p in ("paper", "cpu", "tiny", "fast") if hasattr(cls, p))
    if preset is not None and preset not in presets:
        raise ValueError(f"unknown {label} preset {preset!r} (choose {', '.join(presets)})")
    return getattr(cls, preset)() if preset else cls()


@ARCHS.register("corun")
def _corun(preset: str | None = None, **args):
    from .corun import CORUN, CORUNConfig

    return CORUN(_config(CORUNConfig, preset, "CORUN"), **args)


@ARCHS.register("rsr")
def _rsr(preset: str | None = None, **args):
    from .rsr import RSRConfig, RSRNet

    return RSRNet(_config(RSRConfig, preset, "RSR"), **args)


@ARCHS.register("udair")
def _udair(preset: str | None = None, **args):
    from .udair import UDAIR, UDAIRConfig

    if "tasks" in args:
        args["tasks"] = tuple(args["tasks"])
    return UDAIR(_config(UDAIRConfig, preset, "UDAIR"), **args)


@ARCHS.register("ffdnet")
def _ffdnet(preset: str | None = None, **args):
    from .ffdnet import FFDNet, FFDNetConfig

    return FFDNet(_config(FFDNetConfig, preset, "FFDNet"), **args)


@ARCHS.register("lowlight")
def _lowlight(preset: str | None = None, **args):
    from .lowlight import LowLightConfig, LowLightNet

    return LowLightNet(_config(LowLightConfig, preset, "LowLight"), **args)


@ARCHS.register("degclass")
def _degclass(**args):
    from .degclass import DegradationClassifier

    return DegradationClassifier(**args)


@ARCHS.register("irp")
def _irp(**args):
    from .irp import IRPNet

    return IRPNet(**args)
