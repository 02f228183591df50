"""Every command example in the README and in docs/*.md runs as written, through the real entry point.

The examples are parsed from the fenced code blocks of the Markdown files, so a new or changed example is
tested without editing this file. Each runs with ``bash -c`` in a fresh workspace that holds small files
with the names the examples use (``foggy.jpg``, ``photos/``, ``dashcam.mp4``, ...), with the progress bars
on, and must exit 0, print no traceback and write what its output options name. Python blocks that import
clearsight run as scripts in the same workspace.

Two short lists keep this honest: ``EXEMPT`` (examples not run, each with its reason) and ``SHORTEN``
(examples run with a few extra arguments appended, because as written they train for many minutes). An
entry that no longer matches any example fails the suite, so the lists cannot rot.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ROOT, hazy_scene, scene, to_u8

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMANDS = ("clearsight", ".venv/bin/clearsight", "make", "torchrun")

#: examples that are not run, and why (matched against the whole command, comment removed)
EXEMPT = {
    "make demo": "creates the virtual environment, then runs 'clearsight demo' (test_cli.py::test_demo_runs)",
    "make test": "this test suite",
    "torchrun --standalone --nproc_per_node 2 -m clearsight train recipes/corun_haze.yaml": (
        "two training processes on the full recipe; torchrun is tested in test_train.py"
    ),
    ".venv/bin/clearsight restore /shared/archive -o /shared/out -r --scheduler tcp://HOST:8786": (
        "needs a running Dask cluster; test_dask.py runs restore_files on a LocalCluster client"
    ),
    ".venv/bin/clearsight view": "a server that runs until stopped; test_viewer.py serves it over HTTP",
    ".venv/bin/clearsight view out/ --inputs photos/": "a server; test_viewer.py tests the gallery over HTTP",
    "make e2e": "installs Chromium with apt; the browser test itself (tests/e2e)",
    ".venv/bin/clearsight export corun.haze -o corun_haze.onnx": (
        "a 40-second export; the lowlight example runs the same path and test_onnx.py exports CORUN"
    ),
    ".venv/bin/clearsight restore foggy.jpg -o out/ -m corun.haze --backend onnx": (
        "exports CORUN into the user's cache first (40 s); test_onnx.py runs the onnx backend of every model"
    ),
}

#: (pattern, extra arguments, reason): examples that run for minutes as written get these arguments appended
SHORTEN = [
    (r"\badapt\b", ["--iters", "3", "--eval-every", "2"], "500-1000 adaptation iterations: about 9 min on 2 cores"),
    (
        r"\btrain recipes/",
        ["optim.iterations=2", "data.batch=2", "data.crop=64", "data.val_items=2", "data.val_crop=64"],
        "thousands of iterations on ../shared/data: here 2 on a tiny copy of its layout",
    ),
]

OUTPUT_OPTIONS = ("-o", "--output", "--out", "--csv", "--json", "--plot")


def _blocks(text: str):
    """``(language, lines)`` of each fenced code block of a Markdown text."""
    for m in re.finditer(r"^```(\w*)[^\n]*\n(.*?)^```", text, re.M | re.S):
        yield m.group(1).lower(), m.group(2).splitlines()


def examples() -> list[tuple[str, str]]:
    """``(where, command)`` for each shell command example and ``(where, code)`` for each Python block."""
    found = []
    for doc in DOCUMENTS:
        for lang, lines in _blocks(doc.read_text()):
            name = doc.relative_to(ROOT).as_posix()
            if lang == "python":
                code = "\n".join(lines)
                if "import clearsight" in code:
                    found.append((name, "python:" + code))
                continue
            if lang not in ("", "bash", "sh", "shell", "console"):
                continue
            for line in lines:
                command = " ".join(re.sub(r"(^|\s)#.*$", "", line).split())  # as written, comment dropped
                if command and command.split()[0] in COMMANDS:
                    found.append((name, command))
    unique: dict[str, str] = {}
    for where, command in found:  # the README and a doc often show the same command: run it once
        unique.setdefault(command, where)
    return [(where, command) for command, where in unique.items()]


EXAMPLES = examples()


def test_examples_were_found_and_the_lists_match_them():
    commands = [c for _, c in EXAMPLES]
    assert len(commands) >= 20, commands  # the parser would be broken, not the README
    for key in EXEMPT:
        assert key in commands, f"EXEMPT lists {key!r}, which no document shows any more"
    for pattern, _, _ in SHORTEN:
        assert any(re.search(pattern, c) for c in commands), f"SHORTEN pattern {pattern!r} matches no example"


def _write(path: Path, rgb_float: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), to_u8(rgb_float)[..., ::-1])


def _video(path: Path, frames: int = 40, size=(320, 180)) -> None:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, size)
    base = to_u8(hazy_scene(size[1], size[0], seed=3)[0])[..., ::-1]
    for i in range(frames):
        sigma = 0.5 + (i * 7 % 11) / 3  # sharp and blurred frames interleaved: something to choose from
        w.write(np.ascontiguousarray(cv2.GaussianBlur(base, (0, 0), sigma)))
    w.release()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A folder holding every file the examples name; each test runs in its own copy of it."""
    base = tmp_path_factory.mktemp("examples")
    ws = base / "ws"
    hz = lambda s, h=96, w=128: hazy_scene(h, w, seed=s)[0]  # noqa: E731
    _write(ws / "foggy.jpg", hz(0, 120, 160))
    _write(ws / "reference.png", scene(120, 160, seed=0))
    for i in range(3):
        _write(ws / "photos" / f"photo{i}.png", hz(10 + i) if i < 2 else scene(seed=12))
        _write(ws / "frames" / f"frame{i}.jpg", hz(20 + i))
        _write(ws / "real_fog" / f"fog{i}.jpg", hz(30 + i))
        _write(ws / "synth" / "degraded" / f"s{i}.png", hz(40 + i))
        _write(ws / "out" / f"img{i}.png", scene(seed=50 + i))
        _write(ws / "clean" / f"img{i}.png", np.clip(scene(seed=50 + i) * 0.97 + 0.01, 0, 1))
        _write(ws / "night" / f"n{i}.png", hz(60 + i) * 0.25)
        for j in range(3):
            _write(ws / "bursts" / f"b{i}" / f"f{j}.png", hz(70 + i) if j != 1 else np.clip(hz(70 + i) + 0.05, 0, 1))
    _write(ws / "cams" / "north" / "cam1.jpg", hz(80))
    _write(ws / "cams" / "south" / "day1" / "cam2.png", hz(81))
    for i in range(5):
        _write(ws / "my_camera" / f"cam{i}.jpg", hz(90 + i))
    for ms in (2, 8, 32):
        noisy = hz(99) + np.random.default_rng(ms).normal(0, 0.1 / np.sqrt(ms), (96, 128, 3))
        _write(ws / "bracket" / f"shot_{ms}ms.jpg", np.clip(noisy, 0, 1))
        _write(ws / "bracket" / f"shot_{ms}ms.png", np.clip(noisy, 0, 1))
    _write(ws / "huge.tif", hazy_scene(1100, 1200, seed=5)[0])
    _video(ws / "dashcam.mp4")
    (ws / "my_pipeline.yaml").write_text(
        "depth: geometry\nstages:\n  - {op: day_haze, beta: [0.5, 2.0], airlight: [0.7, 0.95]}\n"
        "  - {op: noise, p: 0.5}\n"
    )
    weights = ROOT / "src" / "clearsight" / "models" / "weights" / "corun_haze.safetensors"
    for name in ("my.safetensors", "my_camera.safetensors"):
        shutil.copy(weights, ws / name)
    shutil.copytree(ROOT / "recipes", ws / "recipes")
    # '../shared/data' as the recipes name it: a tiny copy of its layout, next to the workspace
    data = base / "shared" / "data"
    for k, folder in enumerate(("SunHays80", "Urban100_x2HR", "CBSD68", "Set14", "Kodak24")):
        for i in range(2):
            _write(data / "clean" / folder / f"{folder}_{i}.png", scene(96, 96, seed=100 + 10 * k + i))
    bindir = ws / ".venv" / "bin"
    bindir.mkdir(parents=True)
    entry = Path(sys.executable).parent / "clearsight"
    if entry.is_file():
        (bindir / "clearsight").symlink_to(entry)
    else:  # running outside an installed environment: the same entry point through the interpreter
        (bindir / "clearsight").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m clearsight "$@"\n')
        (bindir / "clearsight").chmod(0o755)
    return ws


def _outputs(words: list[str]) -> list[str]:
    """The paths an example says it writes: its output options and ``out=`` overrides."""
    paths = [words[i + 1] for i, w in enumerate(words[:-1]) if w in OUTPUT_OPTIONS]
    return paths + [w.split("=", 1)[1] for w in words if w.startswith("out=")]


def _snapshot(ws: Path) -> dict[str, float]:
    return {str(p.relative_to(ws)): p.stat().st_mtime_ns for p in ws.rglob("*") if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("where,example", EXAMPLES, ids=[f"{w}:{c[:60]}" for w, c in EXAMPLES])
def test_example_runs_as_written(where, example, workspace, tmp_path):
    if example in EXEMPT:
        pytest.skip(EXEMPT[example])
    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws, symlinks=True)
    (tmp_path / "shared").symlink_to(workspace.parent / "shared")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PATH": f"{ws / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    before = _snapshot(ws)
    if example.startswith("python:"):
        cmd = [sys.executable, "-c", example[len("python:") :]]
        words: list[str] = []
    else:
        words = shlex.split(example)
        extra = [a for pattern, args, _ in SHORTEN if re.search(pattern, example) for a in args]
        words += extra
        cmd = ["bash", "-c", " ".join([example, *map(shlex.quote, extra)])]
    r = subprocess.run(cmd, cwd=ws, env=env, capture_output=True, text=True, timeout=600)
    log = f"{where}: {example}\n--- stdout\n{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-3000:]}"
    assert r.returncode == 0, log
    assert "Traceback" not in r.stderr + r.stdout, log
    after = _snapshot(ws)
    for out in _outputs(words):
        p = ws / out
        made = [k for k, t in after.items() if before.get(k) != t and (ws / k).resolve().is_relative_to(p.resolve())]
        made += [k for k, t in after.items() if before.get(k) != t and k.startswith(out.rstrip("/") + ".")]
        assert made, f"{out} was not written\n{log}"
