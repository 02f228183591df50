"""``clearsight view``: the local web app over real HTTP (a uvicorn server in a thread): upload, restore,
download, errors, the gallery of a restored folder."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid

import numpy as np
import pytest
from conftest import hazy_scene, run_cli, to_u8
from PIL import Image

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    def __init__(self, app) -> None:
        self.port = _free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            time.sleep(0.05)
        raise RuntimeError("the viewer did not start")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, bytes, str]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=120) as r:
                return r.status, r.read(), r.headers.get("content-type", "")
        except urllib.error.HTTPError as e:
            return e.code, e.read(), e.headers.get("content-type", "")

    def upload(self, name: str, data: bytes, model: str = "auto") -> tuple[int, dict]:
        b = uuid.uuid4().hex
        head = (f'--{b}\r\nContent-Disposition: form-data; name="model"\r\n\r\n{model}\r\n'
                f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n")  # fmt: skip
        body = head.encode() + data + f"\r\n--{b}--\r\n".encode()
        req = urllib.request.Request(self.url("/api/restore"), data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={b}"})  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=300) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def server():
    from clearsight.viewer import create_app

    with _Server(create_app()) as s:
        yield s


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def test_page_is_self_contained_and_lists_models(server):
    status, page, ctype = server.get("/")
    assert status == 200 and "text/html" in ctype
    text = page.decode()
    assert "http://" not in text and "https://" not in text  # no asset from the internet
    status, body, _ = server.get("/api/models")
    names = [m["name"] for m in json.loads(body)]
    assert status == 200 and names[0] == "auto" and "dcp" in names


def test_upload_restore_download(server):
    hazy = to_u8(hazy_scene(120, 160, seed=3)[0])
    status, res = server.upload("foggy.png", _png(hazy), "dcp")
    assert status == 200, res
    assert res["method"] == "dcp" and res["seconds"] >= 0 and res["verdict"].startswith(("ok", "harmed"))
    status, data, ctype = server.get(res["download"])
    assert status == 200 and res["filename"] == "foggy_restored.png"
    out = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert out.shape == hazy.shape
    assert np.abs(out.astype(int) - hazy).mean() > 3  # dehazed, not an echo of the upload
    for key in ("before", "after"):
        status, data, ctype = server.get(res[key])
        assert status == 200 and ctype == "image/jpeg"
        assert Image.open(io.BytesIO(data)).size == (160, 120)


def test_large_image_is_previewed_small_and_restored_in_full(server):
    big = to_u8(hazy_scene(1300, 2000, seed=4)[0])
    status, res = server.upload("big.png", _png(big), "dcp")
    assert status == 200, res
    _, after, _ = server.get(res["after"])
    assert max(Image.open(io.BytesIO(after)).size) == 1600
    _, full, _ = server.get(res["download"])
    assert Image.open(io.BytesIO(full)).size == (2000, 1300)


def test_auto_leaves_a_clean_photo_alone_and_says_so(server):
    from conftest import scene

    clean = to_u8(scene(128, 160, seed=5))
    status, res = server.upload("clean.png", _png(clean), "auto")
    assert status == 200, res
    assert res["model"] == "auto" and res["verdict"] == "ok"
    _, data, _ = server.get(res["download"])
    out = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert res["unchanged"] == np.array_equal(out, clean)


def test_bad_uploads_give_one_line_errors(server):
    status, res = server.upload("notes.jpg", b"this is not an image")
    assert status == 400 and "notes.jpg" in res["error"] and "\n" not in res["error"]
    assert "/tmp" not in res["error"]
    status, res = server.upload("a.png", _png(np.zeros((32, 32, 3), np.uint8)), "no-such-model")
    assert status == 400 and "unknown restorer" in res["error"]
    status, _, _ = server.get("/result/nothing/download")
    assert status == 404
    status, res = server.upload("tiny.png", _png(np.full((6, 6, 3), 120, np.uint8)), "dcp")
    assert status == 200 and res["verdict"].startswith("not judged"), res  # restored, too small to judge


def test_gallery_of_a_restored_folder(tmp_path):
    from clearsight.viewer import create_app, gallery_pairs

    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.fromarray(to_u8(hazy_scene(64, 80, seed=i)[0])).save(src / f"g{i}.png")
    out = tmp_path / "out"
    r = run_cli("restore", str(src), "-o", str(out), "-m", "dcp", "-q", "--json", str(out / "run.json"))
    assert r.returncode == 0, r.stderr
    assert len(gallery_pairs(out)) == 3  # from restore's --json summary
    assert len(gallery_pairs(out, src)) == 3  # matched by name
    with _Server(create_app(out)) as s:
        status, body, _ = s.get("/api/gallery")
        items = json.loads(body)
        assert status == 200 and [i["name"] for i in items] == ["g0.png", "g1.png", "g2.png"]
        status, data, ctype = s.get(items[1]["before"])
        assert status == 200 and ctype == "image/jpeg" and Image.open(io.BytesIO(data)).size == (80, 64)
        assert s.get("/gallery/9/before")[0] == 404
