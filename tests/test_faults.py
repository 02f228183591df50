"""Faults and hostile input: kills, a full disk, unwritable or clashing outputs, concurrent runs, decompression
bombs, mutated files, strange names. For each: no traceback, one line naming the file, exit code 1 when anything
failed, inputs byte-identical afterwards, no partial outputs, and a rerun that finishes the job.

Figures (reported in the README): the kinds of fault below, the number of mutated files, outputs lost: 0.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import hazy_scene, run_cli, to_u8
from PIL import Image

from clearsight._errors import ClearsightError
from clearsight.io import load_image, save_image

pytestmark = pytest.mark.slow

#: seeded mutations per format in test_mutated_files_never_crash_or_hang
MUTATIONS = 60


def _photos(folder: Path, n: int, size=(150, 200)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"img{i:02d}.{'jpg' if i % 3 == 0 else 'png'}"
        save_image(p, to_u8(hazy_scene(*size, seed=i)[0]), format="jpg" if p.suffix == ".jpg" else "png")
        out.append(p)
    return out


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.startswith(".")]


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "clearsight", *args]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Twelve photos and the result set of an uninterrupted run (the reference)."""
    root = tmp_path_factory.mktemp("faults")
    photos = root / "photos"
    _photos(photos, 12)
    ref = root / "reference"
    r = run_cli("restore", str(photos), "-o", str(ref), "-q")
    assert r.returncode == 0, r.stderr
    return photos, _digest(photos), _digest(ref)


# ------------------------------------------------------------------------------------------ kill -9
@pytest.mark.parametrize("after", [1, 5, 10])
def test_kill_9_mid_batch_then_rerun_gives_the_full_identical_result(batch, tmp_path, after):
    photos, inputs, reference = batch
    out = tmp_path / "out"
    proc = subprocess.Popen(_cmd("restore", str(photos), "-o", str(out), "-q"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if out.is_dir() and len([p for p in out.iterdir() if not p.name.startswith(".")]) >= after:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {k: v for k, v in _digest(out).items() if not k.startswith(".")} if out.is_dir() else {}
    assert all(reference[k] == v for k, v in done.items()), "a finished output differs from the reference"
    r = run_cli("restore", str(photos), "-o", str(out), "-q")
    assert r.returncode == 0, r.stderr
    assert _digest(out) == reference and not _leftovers(out)
    assert _digest(photos) == inputs


# ------------------------------------------------------------------------------------------ disk full
def test_disk_full_reports_the_file_and_leaves_no_truncated_output(batch, tmp_path):
    photos, inputs, reference = batch
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a small tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    size = sum(sorted(os.path.getsize(photos.parent / "reference" / k) for k in reference)[:5]) + 8192
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.decode().strip()})")
    try:
        out = mnt / "out"
        r = run_cli("restore", str(photos), "-o", str(out), "-q")
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        failed = [line for line in r.stderr.splitlines() if line.startswith("error:")]
        assert failed and all("No space left" in line or "cannot write" in line for line in failed), r.stderr
        written = _digest(out)
        assert written and all(reference[k] == v for k, v in written.items()), "a truncated output was left"
        assert not _leftovers(out) and _digest(photos) == inputs
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


# ------------------------------------------------------------------------------------------ outputs
def test_output_path_that_is_a_file_or_inside_the_input(batch, tmp_path):
    photos, inputs, _ = batch
    afile = tmp_path / "afile"
    afile.write_text("x")
    r = run_cli("restore", str(photos / "img01.png"), "-o", str(afile), "-q")
    assert r.returncode == 1 and "Traceback" not in r.stderr and str(afile) in r.stderr
    assert len([line for line in r.stderr.splitlines() if line.strip()]) == 1, r.stderr
    same = run_cli("restore", str(photos), "-o", str(photos), "-q")
    assert same.returncode == 1 and "is the input folder" in same.stderr
    # a file name for the output (session 39: it became a folder named out.png); an existing folder so named is used
    named = run_cli("restore", str(photos / "img01.png"), "-o", str(tmp_path / "out.png"), "-q")
    assert named.returncode == 1 and "looks like a file name" in named.stderr and "Traceback" not in named.stderr
    assert not (tmp_path / "out.png").exists()
    (tmp_path / "kept.jpg").mkdir()
    assert run_cli("restore", str(photos / "img01.png"), "-o", str(tmp_path / "kept.jpg"), "-q").returncode == 0
    assert (tmp_path / "kept.jpg" / "img01.png").is_file()
    assert _digest(photos) == inputs


def test_two_runs_into_one_folder_at_once_write_each_file_once_and_whole(batch, tmp_path):
    photos, inputs, reference = batch
    out = tmp_path / "out"
    procs = [subprocess.Popen(_cmd("restore", str(photos), "-o", str(out), "-q"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    restored = [int(o.split("restored ")[1].split(",")[0]) for o, _ in results]
    assert sum(restored) == len(reference), restored  # each file written by exactly one of the runs
    assert _digest(out) == reference and not _leftovers(out) and _digest(photos) == inputs


# ------------------------------------------------------------------------------------------ hostile files
def _png_bytes(w: int = 8, h: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _png_bomb(w: int, h: int) -> bytes:
    data = bytearray(_png_bytes())
    data[16:24] = struct.pack(">II", w, h)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def _jpeg_bomb() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    i = data.index(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", 65000, 65000)
    return bytes(data)


def _gif_bomb() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(buf, "GIF")
    data = bytearray(buf.getvalue())
    data[6:10] = struct.pack("<HH", 65535, 65535)
    i = data.index(b",")  # image descriptor: left, top, width, height
    data[i + 5 : i + 9] = struct.pack("<HH", 65535, 65535)
    return bytes(data)


def _tiff_bomb() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, "TIFF")
    data = bytearray(buf.getvalue())
    (ifd,) = struct.unpack("<I", data[4:8])
    (n,) = struct.unpack("<H", data[ifd : ifd + 2])
    for k in range(n):
        e = ifd + 2 + 12 * k
        tag, typ = struct.unpack("<HH", data[e : e + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength
            data[e + 8 : e + 12] = struct.pack("<HH", 65535, 0) if typ == 3 else struct.pack("<I", 100_000)
    return bytes(data)


def _webp_bomb() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, "WEBP", lossless=False)
    data = bytearray(buf.getvalue())
    i = data.index(b"VP8 ") + 8 + 6  # frame tag (3) + start code (3), then 14-bit width and height
    data[i : i + 4] = struct.pack("<HH", 16383, 16383)
    return bytes(data)


BOMBS = {"png": lambda: _png_bomb(100_000, 100_000), "jpg": _jpeg_bomb, "gif": _gif_bomb, "tif": _tiff_bomb,
         "webp": _webp_bomb}  # fmt: skip


@pytest.mark.parametrize("fmt", list(BOMBS))
def test_decompression_bombs_are_refused_fast_with_one_line(tmp_path, fmt):
    bomb = tmp_path / f"bomb.{fmt}"
    bomb.write_bytes(BOMBS[fmt]())
    env = {**os.environ, "CLEARSIGHT_MAX_PIXELS": "100000000"}  # a WebP cannot claim more than 268 MP
    t0 = time.time()
    r = subprocess.run(_cmd("restore", str(bomb), "-o", str(tmp_path / "out"), "-q"), capture_output=True,
                       text=True, env=env, timeout=120)  # fmt: skip
    assert time.time() - t0 < 30
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "bomb." in errors[0], r.stderr
    assert not (tmp_path / "out").is_dir() or not list((tmp_path / "out").iterdir())


def _valid_files() -> dict[str, bytes]:
    rgb = to_u8(hazy_scene(48, 64, seed=3)[0])
    files = {}
    for fmt, kw in {"PNG": {}, "JPEG": {"quality": 90}, "TIFF": {}, "GIF": {}, "WEBP": {}, "BMP": {}}.items():
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, fmt, **kw)
        files[fmt] = buf.getvalue()
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", exif=exif.tobytes())
    files["JPEG+EXIF"] = buf.getvalue()
    return files


def test_mutated_files_never_crash_or_hang():
    """Truncations and bit flips (seeded) of every format we read: each read returns pixels or raises a
    clearsight error, within a few seconds."""
    rng = np.random.default_rng(0)
    tried = 0
    for fmt, good in _valid_files().items():
        for k in range(MUTATIONS):
            data = bytearray(good)
            if k % 3 == 0:
                data = data[: int(rng.integers(1, len(data)))]
            else:
                for _ in range(int(rng.integers(1, 12))):
                    i = int(rng.integers(0, len(data)))
                    data[i] ^= 1 << int(rng.integers(0, 8))
            path = Path(f"/tmp/clearsight-mutant-{os.getpid()}.bin")
            path.write_bytes(bytes(data))
            t0 = time.time()
            try:
                rec = load_image(path)
                assert rec.rgb.ndim == 3 and rec.rgb.shape[2] == 3
            except ClearsightError as e:
                assert "\n" not in str(e) and str(path) in str(e), f"{fmt} mutation {k}: {e}"
            except Exception as e:  # noqa: BLE001 - the point of the test
                pytest.fail(f"{fmt} mutation {k}: {type(e).__name__}: {e}")
            finally:
                path.unlink(missing_ok=True)
            assert time.time() - t0 < 5, f"{fmt} mutation {k} took {time.time() - t0:.1f} s"
            tried += 1
    assert tried == MUTATIONS * 7


def test_malformed_exif_many_page_tiff_and_broken_videos(tmp_path):
    rgb = to_u8(hazy_scene(48, 64, seed=4)[0])
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG")
    jpg = buf.getvalue()
    bad_exif = jpg[:2] + b"\xff\xe1" + struct.pack(">H", 2 + 6 + 40) + b"Exif\x00\x00" + os.urandom(40) + jpg[2:]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "exif.jpg").write_bytes(bad_exif)
    pages = [Image.fromarray(rgb[:8, :8]) for _ in range(2000)]
    pages[0].save(tmp_path / "in" / "pages.tif", save_all=True, append_images=pages[1:])
    (tmp_path / "in" / "empty.mp4").write_bytes(b"")
    (tmp_path / "in" / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    before = _digest(tmp_path / "in")
    t0 = time.time()
    r = run_cli("restore", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-q")
    assert time.time() - t0 < 60
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "restored 2, skipped 0, failed 2" in r.stdout, r.stdout
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and all(".mp4" in e for e in errors), r.stderr
    assert _digest(tmp_path / "in") == before and not _leftovers(tmp_path / "out")


# ------------------------------------------------------------------------------------------ names
def test_strange_names_and_names_that_differ_only_by_extension(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rgb = to_u8(hazy_scene(40, 50, seed=5)[0])
    long = "n" * 240 + ".png"
    names = ["café 雾 ☁.png", "with space.png", "-leading-dash.png", long, "a.jpg", "a.png"]
    for i, n in enumerate(names):
        save_image(src / n, np.roll(rgb, i * 7, axis=1), format="jpg" if n.endswith(".jpg") else "png")
    before = _digest(src)
    out = tmp_path / "out"
    r = run_cli("restore", str(src), "-o", str(out), "-q")
    assert r.returncode == 0, r.stderr
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == len(names) and not _leftovers(out), written
    assert (
        {"a.jpg", "a.png"} <= {n for n in written}
        or {"a.jpg", "a_png.png"} <= set(written)
        or (len({n for n in written if n.startswith("a")}) == 2)
    )
    # a file named like an option, given on the command line after --
    r2 = subprocess.run(_cmd("restore", "-o", str(tmp_path / "out2"), "-q", "--", "-leading-dash.png"),
                        capture_output=True, text=True, cwd=src)  # fmt: skip
    assert r2.returncode == 0 and (tmp_path / "out2" / "-leading-dash.png").is_file(), r2.stderr
    assert _digest(src) == before


# ------------------------------------------------------------------------------------------ adaptation
def test_adapt_killed_mid_run_resumes_exactly(tmp_path):
    target = tmp_path / "cam"
    _photos(target, 5, size=(48, 64))
    args = ["adapt", "--target", str(target), "--iters", "6", "--size", "32", "--eval-every", "100", "-q",
            "--model", "corun.haze"]  # fmt: skip
    ref = run_cli(*args, "--ckpt-every", "2", "--out", str(tmp_path / "ref.safetensors"))
    assert ref.returncode == 0, ref.stderr
    killed = tmp_path / "killed.safetensors"
    args += ["--ckpt-every", "2"]
    proc = subprocess.Popen(_cmd(*args, "--out", str(killed)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = Path(str(killed) + ".ckpt")
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not ckpt.is_file():
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if killed.is_file():
        pytest.skip("the run finished before it could be killed")
    again = subprocess.run(_cmd(*args, "--out", str(killed)), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    from safetensors.torch import load_file

    a, b = load_file(tmp_path / "ref.safetensors"), load_file(killed)
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_io_fault_helpers_are_sound(monkeypatch):
    """The bombs claim what they should (so the tests above test the limit, not a decoding error)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert Image.open(io.BytesIO(_png_bomb(100_000, 100_000))).size == (100_000, 100_000)
    assert Image.open(io.BytesIO(_jpeg_bomb())).size == (65000, 65000)
    assert Image.open(io.BytesIO(_tiff_bomb())).size[0] >= 65535
