import io
import os

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

import clearsight as cs
from clearsight.io import load_image, read_image, save_image, to_array, to_tensor, write_image


def _png_bytes(arr, mode=None, **kw) -> bytes:
    b = io.BytesIO()
    Image.fromarray(arr, mode).save(b, "PNG", **kw) if mode else Image.fromarray(arr).save(b, "PNG", **kw)
    return b.getvalue()


@pytest.fixture
def rgb8():
    rng = np.random.default_rng(0)
    return (rng.random((21, 34, 3)) * 255).astype(np.uint8)


def test_rgb_png_round_trip(tmp_path, rgb8):
    p = tmp_path / "a.png"
    save_image(p, rgb8)
    rec = load_image(p)
    assert rec.format == "png" and rec.bit_depth == 8 and not rec.grayscale and rec.alpha is None
    assert np.array_equal(rec.rgb, rgb8)
    t = read_image(p)
    assert t.shape == (1, 3, 21, 34) and t.dtype == torch.float32 and 0 <= t.min() and t.max() <= 1


def test_decodes_by_content_not_extension(tmp_path, rgb8):
    p = tmp_path / "really_a_png.jpg"
    p.write_bytes(_png_bytes(rgb8))
    rec = load_image(p)
    assert rec.format == "png"
    assert np.array_equal(rec.rgb, rgb8)


def test_grayscale(tmp_path):
    g = (np.arange(20 * 30) % 256).astype(np.uint8).reshape(20, 30)
    p = tmp_path / "g.png"
    p.write_bytes(_png_bytes(g, "L"))
    rec = load_image(p)
    assert rec.grayscale and rec.rgb.shape == (20, 30, 3)
    assert all(np.array_equal(rec.rgb[:, :, c], g) for c in range(3))
    out = tmp_path / "o.png"
    save_image(out, rec.rgb, grayscale=True)
    back = Image.open(out)
    assert back.mode == "L" and np.array_equal(np.asarray(back), g)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_16bit_png_kept_16bit(tmp_path, channels):
    rng = np.random.default_rng(1)
    arr = (rng.random((13, 17, channels)) * 65535).astype(np.uint16)
    p = tmp_path / "d16.png"
    cv2.imwrite(str(p), arr[:, :, 0] if channels == 1 else arr)  # OpenCV stores BGR(A)
    rec = load_image(p)
    assert rec.bit_depth == 16 and rec.rgb.dtype == np.uint16
    if channels == 1:
        assert rec.grayscale and np.array_equal(rec.rgb[:, :, 0], arr[:, :, 0])
    else:
        assert np.array_equal(rec.rgb, arr[:, :, 2::-1])
    if channels == 4:
        assert np.array_equal(rec.alpha, arr[:, :, 3])
    out = tmp_path / "o16.png"
    save_image(out, rec.rgb, rec.alpha, grayscale=rec.grayscale)
    back = load_image(out)
    assert back.bit_depth == 16 and np.array_equal(back.rgb, rec.rgb)
    if channels == 4:
        assert np.array_equal(back.alpha, rec.alpha)
    # 16-bit data written as JPEG becomes 8-bit, rounded
    save_image(tmp_path / "o.jpg", rec.rgb, quality=100)
    assert load_image(tmp_path / "o.jpg").bit_depth == 8


def test_rgba_alpha_kept(tmp_path, rgb8):
    alpha = np.tile(np.linspace(0, 255, 34).astype(np.uint8), (21, 1))
    arr = np.dstack([rgb8, alpha])
    p = tmp_path / "rgba.png"
    p.write_bytes(_png_bytes(arr, "RGBA"))
    rec = load_image(p)
    assert np.array_equal(rec.alpha, alpha) and np.array_equal(rec.rgb, rgb8)
    out = tmp_path / "o.png"
    save_image(out, rec.rgb, rec.alpha)
    assert np.array_equal(np.asarray(Image.open(out))[:, :, 3], alpha)
    # JPEG cannot hold alpha: dropped, not an error
    save_image(tmp_path / "o.jpg", rec.rgb, rec.alpha)
    assert Image.open(tmp_path / "o.jpg").mode == "RGB"


def test_palette_png(tmp_path, rgb8):
    pal = Image.fromarray(rgb8).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    p = tmp_path / "pal.png"
    pal.save(p)
    rec = load_image(p)
    assert rec.source_mode == "P" and rec.alpha is None
    assert np.array_equal(rec.rgb, np.asarray(pal.convert("RGB")))
    # palette with a transparent index gets an alpha channel
    pal.info["transparency"] = 0
    p2 = tmp_path / "pal_t.png"
    pal.save(p2, transparency=0)
    rec2 = load_image(p2)
    assert rec2.alpha is not None and (rec2.alpha == 0).any()


def test_cmyk_jpeg(tmp_path):
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[:, :8] = (200, 30, 30)
    rgb[:, 8:16] = (30, 200, 30)
    rgb[:, 16:] = (30, 30, 200)
    p = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(p, quality=100)
    assert Image.open(p).mode == "CMYK"
    rec = load_image(p)
    assert rec.source_mode == "CMYK" and rec.rgb.dtype == np.uint8
    assert np.abs(rec.rgb.astype(int) - rgb.astype(int)).mean() < 12


def test_cmyk_with_icc_profile_uses_it(tmp_path):
    p = tmp_path / "cmyk_icc.jpg"
    im = Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).convert("CMYK")
    # an sRGB profile is not a CMYK profile: the transform fails and the plain conversion is used
    prof = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    im.save(p, icc_profile=prof)
    rec = load_image(p)
    assert rec.rgb.shape == (8, 8, 3) and rec.icc_profile is None


@pytest.mark.parametrize("orientation,expect", [(3, (10, 20)), (6, (20, 10)), (8, (20, 10))])
def test_exif_orientation_applied(tmp_path, orientation, expect):
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:5, :5] = 255  # white block in the top-left corner
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = orientation
    p = tmp_path / "rot.jpg"
    im.save(p, exif=exif.tobytes(), quality=100)
    rec = load_image(p)
    assert rec.rgb.shape[:2] == expect
    ref = np.asarray(ImageOps_transpose(p))
    assert np.abs(rec.rgb.astype(int) - ref.astype(int)).max() <= 1
    # orientation is reset to 1 in the EXIF we carry, since the pixels are now upright
    out = tmp_path / "o.jpg"
    save_image(out, rec.rgb, exif=rec.exif)
    assert Image.open(out).getexif().get(0x0112, 1) == 1


def ImageOps_transpose(p):
    from PIL import ImageOps

    return ImageOps.exif_transpose(Image.open(p)).convert("RGB")


def test_one_pixel_image(tmp_path):
    p = tmp_path / "one.png"
    p.write_bytes(_png_bytes(np.array([[[10, 20, 30]]], np.uint8)))
    rec = load_image(p)
    assert rec.rgb.shape == (1, 1, 3)


@pytest.mark.parametrize(
    "name,content,error,words",
    [
        ("empty.jpg", b"", cs.EmptyImageFileError, "empty file"),
        ("text.jpg", b"hello, I am not a picture\n" * 3, cs.UnsupportedImageError, "not an image"),
    ],
)
def test_bad_files_raise_typed_one_line_errors(tmp_path, name, content, error, words):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(error) as e:
        load_image(p)
    msg = str(e.value)
    assert str(p) in msg and words in msg and "\n" not in msg


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_truncated_files(tmp_path, rgb8, fmt):
    big = np.tile(rgb8, (8, 8, 1))
    b = io.BytesIO()
    Image.fromarray(big).save(b, "PNG" if fmt == "png" else "JPEG")
    data = b.getvalue()
    p = tmp_path / f"trunc.{fmt}"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(cs.CorruptImageError) as e:
        load_image(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(cs.ImageReadError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(cs.ImageReadError, match="folder"):
        load_image(tmp_path)


def test_too_many_pixels(tmp_path, monkeypatch, rgb8):
    p = tmp_path / "a.png"
    save_image(p, rgb8)
    monkeypatch.setenv("CLEARSIGHT_MAX_PIXELS", "100")
    with pytest.raises(cs.ImageTooLargeError, match="CLEARSIGHT_MAX_PIXELS"):
        load_image(p)


def test_atomic_write_leaves_nothing_on_failure(tmp_path, rgb8, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"old content")

    def boom(self, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(cs.ImageWriteError, match="No space left"):
        save_image(target, rgb8)
    assert target.read_bytes() == b"old content"  # the old file is untouched
    assert sorted(os.listdir(tmp_path)) == ["out.png"]  # no temporary file left


def test_write_errors(tmp_path, rgb8):
    with pytest.raises(cs.ImageWriteError, match="does not exist"):
        save_image(tmp_path / "missing" / "a.png", rgb8)
    with pytest.raises(cs.ImageWriteError, match="output format"):
        save_image(tmp_path / "a.xyz", rgb8)
    save_image(tmp_path / "a.xyz", rgb8, format="png")
    assert load_image(tmp_path / "a.xyz").format == "png"


@pytest.mark.parametrize("fmt", ["png", "jpg", "tif", "bmp", "webp"])
def test_every_writable_format(tmp_path, fmt):
    smooth = (np.stack(np.mgrid[0:24, 0:40], axis=2).sum(axis=2, keepdims=True) * [3, 2, 1] % 256).astype(np.uint8)
    p = tmp_path / f"a.{fmt}"
    save_image(p, smooth, quality=100)
    rec = load_image(p)
    assert rec.format == fmt and rec.rgb.shape == smooth.shape
    tol = 0 if fmt in ("png", "tif", "bmp") else 6
    assert np.abs(rec.rgb.astype(int) - smooth.astype(int)).mean() <= tol


def test_tensor_helpers(tmp_path):
    x = torch.rand(1, 3, 9, 11)
    arr = to_array(x)
    assert arr.dtype == np.uint8 and arr.shape == (9, 11, 3)
    assert (to_tensor(arr) - x).abs().max() <= 0.5 / 255 + 1e-6
    write_image(tmp_path / "t.png", x, bit_depth=16)
    back = cs.read_image(tmp_path / "t.png")
    assert (back - x).abs().max() <= 0.5 / 65535 + 1e-6
    with pytest.raises(cs.ShapeError):
        write_image(tmp_path / "bad.png", torch.rand(2, 3, 4, 4))


def test_floating_point_tiff_reads_clipped_with_a_warning_and_writes_back_as_float(tmp_path):
    rng = np.random.default_rng(0)
    a = (rng.random((30, 40, 3)) * 1.1 - 0.02).astype(np.float32)
    a[0, 0, 0] = np.nan
    src = tmp_path / "hdr.tif"
    assert cv2.imwrite(str(src), a[..., ::-1])  # OpenCV writes BGR
    with pytest.warns(UserWarning, match="outside \\[0, 1\\].*clipped"):
        rec = load_image(src)
    assert rec.bit_depth == 32 and rec.rgb.dtype == np.float32 and rec.format == "tif" and not rec.grayscale
    want = np.clip(np.nan_to_num(a, nan=0.0), 0, 1)
    assert np.array_equal(rec.rgb, want)
    out = save_image(tmp_path / "out.tif", rec.rgb, format="tif")
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.float32 and np.array_equal(back[..., ::-1], want)
    # one channel stays one channel; other formats get integer pixels
    g = a[..., 1].copy()
    assert cv2.imwrite(str(tmp_path / "g.tif"), np.clip(g, 0, 1))
    rec_g = load_image(tmp_path / "g.tif")
    assert rec_g.grayscale and rec_g.rgb.dtype == np.float32
    save_image(tmp_path / "g2.tif", rec_g.rgb, grayscale=True)
    assert cv2.imread(str(tmp_path / "g2.tif"), cv2.IMREAD_UNCHANGED).ndim == 2
    png = load_image(save_image(tmp_path / "p.png", rec.rgb))
    assert png.bit_depth == 16 and np.abs(png.rgb / 65535.0 - want).max() < 1e-4


def test_restore_keeps_a_floating_point_tiff_floating_point(tmp_path):
    from conftest import hazy_scene, run_cli

    src = tmp_path / "in" / "fog.tif"
    src.parent.mkdir()
    hz = hazy_scene(48, 64)[0].astype(np.float32)
    assert cv2.imwrite(str(src), hz[..., ::-1])
    r = run_cli("restore", str(src), "-o", str(tmp_path / "out"), "-q", "-m", "dcp")
    assert r.returncode == 0, r.stderr
    out = cv2.imread(str(tmp_path / "out" / "fog.tif"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.float32 and out.shape == (48, 64, 3) and 0 <= out.min() and out.max() <= 1
    assert np.abs(out[..., ::-1] - hz).mean() > 0.01  # restored, not copied
