"""Public API: the names users rely on, and the examples in docstrings."""

import doctest
import importlib
import json
from pathlib import Path

import pytest

import clearsight as cs

SURFACE = Path(__file__).with_name("api_surface.json")
DOCTEST_MODULES = [
    "clearsight._checks",
    "clearsight._registry",
    "clearsight.physics",
    "clearsight.metrics",
    "clearsight.metrics.full_reference",
    "clearsight.models",
    "clearsight.priors.dcp",
    "clearsight.infer",
    "clearsight.models.corun",
    "clearsight.models.rsr",
    "clearsight.models.udair",
    "clearsight.adapt.coral",
    "clearsight.degrade.capture",
    "clearsight.irp.labels",
    "clearsight.irp.apps",
    "clearsight.video",
    "clearsight.models.irp",
    "clearsight.train",
    "clearsight.train.config",
    "clearsight.train.losses",
]


def test_public_names_do_not_disappear():
    expected = json.loads(SURFACE.read_text())
    missing = [n for n in expected if not hasattr(cs, n)]
    assert not missing, f"public names removed: {missing}; add a deprecation shim instead"


def test_unknown_attribute_raises():
    with pytest.raises(AttributeError):
        cs.no_such_thing  # noqa: B018


@pytest.mark.parametrize("module", DOCTEST_MODULES)
def test_docstring_examples(module):
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_tune_allocator_sets_glibc_thresholds_once_and_can_be_turned_off(monkeypatch):
    from types import SimpleNamespace

    import clearsight.runtime as rt

    calls = []

    def mallopt(param, value):
        calls.append((param, value))
        return 1

    monkeypatch.setattr(rt, "_TUNED", None)
    monkeypatch.setattr(rt, "_libc", lambda: SimpleNamespace(mallopt=mallopt))
    monkeypatch.setattr(rt.sys, "platform", "linux")
    monkeypatch.setattr(rt.platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.setenv("CLEARSIGHT_MALLOC", "0")
    assert rt.tune_allocator() is False and calls == []
    monkeypatch.delenv("CLEARSIGHT_MALLOC")
    with pytest.raises(ValueError, match="threshold"):
        rt.tune_allocator(0)
    assert rt.tune_allocator() is True
    assert sorted(calls) == [(-3, 1 << 30), (-1, 1 << 30)]  # M_MMAP_THRESHOLD and M_TRIM_THRESHOLD
    assert rt.tune_allocator() is True and len(calls) == 2  # idempotent
    monkeypatch.setattr(rt, "_TUNED", None)
    monkeypatch.setattr(rt.platform, "libc_ver", lambda: ("", ""))  # musl, macOS: nothing to tune
    assert rt.tune_allocator() is False and len(calls) == 2


def test_synthesis_runs_on_one_thread_and_gives_the_thread_count_back(tmp_path, monkeypatch):
    # torch 2.13 sometimes computes exp of the second thread's half with a ~1e-4 error, which made `synth`
    # outputs differ between processes; synthesis therefore runs on one intra-op thread
    import torch

    from clearsight.degrade import ops, writer

    seen = []
    real = ops.day_haze

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(ops, "day_haze", spy)
    (tmp_path / "clean").mkdir()
    from conftest import hazy_scene, to_u8

    cs.save_image(tmp_path / "clean" / "a.png", to_u8(hazy_scene(40, 48)[0]))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        writer.synthesize("day_haze", tmp_path / "clean", tmp_path / "out", size=48, progress=False)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
