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


@ARCHS.register("corun")
def _corun(preset: str | None = None, **args):
    from .corun import CORUN, CORUNConfig

    presets = {"paper": CORUNConfig.paper, "cpu": CORUNConfig.cpu, "tiny": CORUNConfig.tiny}
    if preset is not None and preset not in presets:
        raise ValueError(f"unknown CORUN preset {preset!r} (choose {', '.join(presets)})")
    base = presets[preset]() if preset else CORUNConfig()
    return CORUN(base, **args)


@ARCHS.register("rsr")
def _rsr(preset: str | None = None, **args):
    from .rsr import RSRConfig, RSRNet

    presets = {"paper": RSRConfig.paper, "cpu": RSRConfig.cpu, "tiny": RSRConfig.tiny}
    if preset is not None and preset not in presets:
        raise ValueError(f"unknown RSR preset {preset!r} (choose {', '.join(presets)})")
    return RSRNet(presets[preset]() if preset else None, **args)


@ARCHS.register("udair")
def _udair(preset: str | None = None, **args):
    from .udair import UDAIR, UDAIRConfig

    presets = {"paper": UDAIRConfig.paper, "cpu": UDAIRConfig.cpu, "tiny": UDAIRConfig.tiny}
    if preset is not None and preset not in presets:
        raise ValueError(f"unknown UDAIR preset {preset!r} (choose {', '.join(presets)})")
    if "tasks" in args:
        args["tasks"] = tuple(args["tasks"])
    return UDAIR(presets[preset]() if preset else None, **args)


@ARCHS.register("ffdnet")
def _ffdnet(preset: str | None = None, **args):
    from .ffdnet import FFDNet, FFDNetConfig

    presets = {"paper": FFDNetConfig.paper, "cpu": FFDNetConfig.cpu, "tiny": FFDNetConfig.tiny}
    if preset is not None and preset not in presets:
        raise ValueError(f"unknown FFDNet preset {preset!r} (choose {', '.join(presets)})")
    return FFDNet(presets[preset]() if preset else None, **args)


@ARCHS.register("degclass")
def _degclass(**args):
    from .degclass import DegradationClassifier

    return DegradationClassifier(**args)


@ARCHS.register("irp")
def _irp(**args):
    from .irp import IRPNet

    return IRPNet(**args)
