"""Downstream-task helpers (the full check needs the optional extras; see `make downstream`)."""

import importlib.util

import pytest

from clearsight.bench.downstream import char_accuracy, face_task, run_downstream


def test_char_accuracy():
    assert char_accuracy("ROAD CLOSED", "road closed") == 1.0
    assert char_accuracy("ABCD", "ABXD") == pytest.approx(0.75)
    assert char_accuracy("ABCD", "") == 0.0
    assert char_accuracy("AB", "ABCDEFG") == 0.0  # clipped at 0


def test_face_task_runs_and_restoration_helps():
    res = face_task(["dcp"], n=4, seed=0, betas=(3.0,))
    assert res["n"] == 4
    rates = res["detection_rate"]
    assert 0 <= rates["degraded"] <= 1 and rates["dcp"] >= rates["degraded"]


def test_missing_extra_is_reported_not_raised():
    res = run_downstream(["dcp"], n=2)
    if importlib.util.find_spec("rapidocr") is None:
        assert "skipped" in res["ocr"] and "make downstream" in res["ocr"]["skipped"]
    else:
        assert "char_accuracy" in res["ocr"]
