"""Restoring a batch on a Dask cluster (``restore --workers N``, ``restore_files(..., client=...)``): the same
bytes as the serial run, failures isolated, finished files skipped, no file lost when a worker dies."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest
from conftest import hazy_scene, run_cli, to_u8
from PIL import Image

from clearsight.batch import restore_files
from clearsight.models import create_model
from clearsight.priors.base import Restorer

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow


def _png_bomb(w: int, h: int) -> bytes:
    """A valid PNG header claiming ``w x h`` pixels with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _mixed_folder(folder: Path) -> Path:
    """Good photos (PNG, JPEG, one large enough to be tiled), a corrupt file and a decompression bomb."""
    folder.mkdir(parents=True)
    for i in range(5):
        img = to_u8(hazy_scene(96 + 8 * i, 128, seed=i)[0])
        Image.fromarray(img).save(folder / (f"p{i}.png" if i % 2 else f"p{i}.jpg"), quality=90)
    big = to_u8(hazy_scene(700, 900, seed=9)[0])
    Image.fromarray(big).save(folder / "large.png")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 10)
    (folder / "huge.png").write_bytes(_png_bomb(100_000, 100_000))
    return folder


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


@pytest.fixture(scope="module")
def client():
    from clearsight._dask import dask_client

    with dask_client(workers=2) as c:
        yield c


@pytest.mark.parametrize("model", ["dcp", "auto"])
def test_two_workers_give_the_serial_bytes(tmp_path, client, model):
    src = _mixed_folder(tmp_path / "in")
    before = _bytes(src)
    serial = restore_files([src], tmp_path / "serial", model=model, tile=256, progress=False)
    seen = []
    par = restore_files([src], tmp_path / "par", model=model, tile=256, progress=False, client=client,
                        on_result=seen.append)  # fmt: skip
    assert [r.status for r in par.results] == [r.status for r in serial.results]
    assert [Path(r.source).name for r in par.results] == [Path(r.source).name for r in serial.results]
    assert sorted(Path(r.source).name for r in seen) == sorted(Path(r.source).name for r in par.results)
    failed = sorted(Path(r.source).name for r in par.results if r.status == "failed")
    assert failed == ["corrupt.jpg", "huge.png"]  # each fails alone, the others are restored
    assert _bytes(tmp_path / "par") == _bytes(tmp_path / "serial")
    assert len(_bytes(tmp_path / "par")) == 6
    assert _bytes(src) == before  # inputs untouched
    again = restore_files([src], tmp_path / "par", model=model, progress=False, client=client)
    assert again.count("skipped") == 6 and again.count("done") == 0


class _DiesOnce(Restorer):
    """``dcp``, except that the first image any worker process starts kills that process (a crashed worker)."""

    name = "dcp"

    def __init__(self, marker: str) -> None:
        self.inner, self.marker = create_model("dcp"), marker

    def prepare(self, preview):
        if not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os._exit(17)
        return self.inner.prepare(preview)

    def prepare_image(self, arr):
        self.prepare(arr[:8, :8])  # the kill happens before anything is written
        return self.inner.prepare_image(arr)

    def process(self, x, state):
        return self.inner.process(x, state)


def test_a_worker_killed_mid_batch_loses_no_file(tmp_path):
    import cloudpickle

    from clearsight._dask import dask_client

    cloudpickle.register_pickle_by_value(__import__(__name__))  # the workers need not import this test module
    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        Image.fromarray(to_u8(hazy_scene(80, 96, seed=i)[0])).save(src / f"f{i}.png")
    marker = tmp_path / "killed"
    with dask_client(workers=2) as c:
        res = restore_files([src], tmp_path / "out", model=_DiesOnce(str(marker)), progress=False, client=c)
    assert marker.exists()  # a worker did die
    assert res.count("done") == 6, [r.message for r in res.results]
    serial = restore_files([src], tmp_path / "serial", model="dcp", progress=False)
    assert serial.ok
    assert _bytes(tmp_path / "out") == _bytes(tmp_path / "serial")
    assert not list((tmp_path / "out").glob(".*"))  # no lock or partial file left behind


def test_cli_workers_matches_serial_and_exit_codes(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.fromarray(to_u8(hazy_scene(72, 96, seed=i)[0])).save(src / f"c{i}.png")
    (src / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    a = run_cli("restore", str(src), "-o", str(tmp_path / "a"), "-m", "dcp", "-q")
    b = run_cli("restore", str(src), "-o", str(tmp_path / "b"), "-m", "dcp", "-q", "--workers", "2")
    assert a.returncode == b.returncode == 1, b.stderr
    assert b.stderr.count("error: ") == 1 and "bad.png" in b.stderr
    assert "Traceback" not in b.stderr + b.stdout
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")
    c = run_cli("restore", str(src), "-o", str(tmp_path / "b"), "-m", "dcp", "--workers", "2", "--scheduler", "x")
    assert c.returncode != 0 and "not both" in c.stderr
    d = run_cli("restore", str(src), "-o", str(tmp_path / "d"), "-m", "dcp", "--scheduler", "tcp://127.0.0.1:9")
    assert d.returncode != 0 and "scheduler" in d.stderr and "Traceback" not in d.stderr
