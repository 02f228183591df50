"""Reading and writing images by content, safely.

Everything inside clearsight works on float32 tensors ``(B, 3, H, W)`` in [0, 1]; this module is the
edge where files become tensors and back. It

* decodes by content, never by extension (a PNG named ``.jpg`` reads as the PNG it is);
* applies the EXIF orientation, so pixels come out the way the camera meant them;
* keeps 16-bit data as 16-bit (Pillow would silently drop 16-bit colour PNGs to 8 bits, so those
  are decoded with OpenCV);
* turns grayscale, palette, CMYK and other modes into RGB and keeps the alpha channel apart, so it
  can be written back after processing;
* writes atomically: the encoder writes a temporary file in the destination folder, which is then
  renamed over the target, so a crash never leaves a half-written image behind;
* raises typed errors (:mod:`clearsight._errors`) with a one-line message that names the file.
"""

from __future__ import annotations

import io as _io
import os
import struct
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from ._checks import check_shape
from ._errors import (
    CorruptImageError,
    EmptyImageFileError,
    ImageReadError,
    ImageTooLargeError,
    ImageWriteError,
    UnsupportedImageError,
)

__all__ = [
    "ImageRecord",
    "load_image",
    "save_image",
    "read_image",
    "write_image",
    "to_tensor",
    "to_array",
    "format_for_path",
    "extension_for_format",
    "WRITABLE_FORMATS",
    "max_pixels",
]

#: Formats clearsight writes, by canonical name, with the file extension it uses.
WRITABLE_FORMATS: dict[str, str] = {"png": ".png", "jpg": ".jpg", "tif": ".tif", "bmp": ".bmp", "webp": ".webp"}

# Pillow format name -> our canonical output format. Formats we read but do not write (GIF keeps
# only 256 colours, PPM and friends are rare) are written as PNG.
_PIL_TO_FORMAT = {"PNG": "png", "JPEG": "jpg", "MPO": "jpg", "TIFF": "tif", "BMP": "bmp", "WEBP": "webp"}
_SUFFIX_TO_FORMAT = {
    ".png": "png",
    ".jpg": "jpg",
    ".jpeg": "jpg",
    ".jpe": "jpg",
    ".tif": "tif",
    ".tiff": "tif",
    ".bmp": "bmp",
    ".webp": "webp",
}
_FORMAT_TO_PIL = {"png": "PNG", "jpg": "JPEG", "tif": "TIFF", "bmp": "BMP", "webp": "WEBP"}
_SIXTEEN_BIT_FORMATS = ("png", "tif")

_DEFAULT_MAX_PIXELS = 400_000_000


def max_pixels() -> int:
    """Largest image (in pixels) that :func:`load_image` accepts.

    Defaults to 400 megapixels; set ``CLEARSIGHT_MAX_PIXELS`` to change it. The limit protects
    against decompression bombs (a tiny file that expands to gigabytes).
    """
    try:
        return int(os.environ.get("CLEARSIGHT_MAX_PIXELS", _DEFAULT_MAX_PIXELS))
    except ValueError:
        return _DEFAULT_MAX_PIXELS


@dataclass
class ImageRecord:
    """A decoded image with what is needed to write a result back the way it came in.

    Attributes:
        rgb: pixels, ``(H, W, 3)``, RGB, ``uint8`` or ``uint16``, or ``float32`` in [0, 1] for a
            floating-point TIFF (see ``bit_depth``). Grayscale inputs are replicated to three channels.
        alpha: the alpha channel ``(H, W)`` with the dtype of ``rgb``, or ``None``.
        bit_depth: 8, 16, or 32 (floating point).
        format: the canonical format the content was in (``png``, ``jpg``, ``tif``, ...), which is
            also the format a result is written in unless the caller asks otherwise.
        grayscale: the source had a single colour channel.
        source_mode: the Pillow mode of the source (``RGB``, ``L``, ``P``, ``CMYK``, ``I;16`` ...).
        icc_profile: the embedded colour profile, kept for writing back (``None`` for CMYK sources,
            which are converted to sRGB).
        exif: EXIF bytes with the orientation reset to 1 (the pixels are already rotated), or ``None``.
        path: where it was read from.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    bit_depth: int = 8
    format: str = "png"
    grayscale: bool = False
    source_mode: str = "RGB"
    icc_profile: bytes | None = None
    exif: bytes | None = None
    path: str = ""

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    def to_tensor(self) -> torch.Tensor:
        """The RGB pixels as a float32 tensor ``(1, 3, H, W)`` in [0, 1]."""
        return to_tensor(self.rgb)

    def with_pixels(self, rgb: np.ndarray) -> ImageRecord:
        """A copy of this record holding other RGB pixels (same size), metadata kept."""
        return replace(self, rgb=rgb)


# --------------------------------------------------------------------------------------------- #
# conversions
# --------------------------------------------------------------------------------------------- #
def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """Convert an ``(H, W, 3)`` or ``(H, W)`` ``uint8``/``uint16`` array to ``(1, C, H, W)`` float32 in [0, 1]."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.dtype == np.uint8:
        scale = 255.0
    elif arr.dtype == np.uint16:
        scale = 65535.0
    elif np.issubdtype(arr.dtype, np.floating):
        scale = 1.0
    else:
        raise TypeError(f"unsupported array dtype {arr.dtype}; expected uint8, uint16 or float")
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None]
    return t.float().div_(scale) if scale != 1.0 else t.float()


def to_array(img: torch.Tensor, bit_depth: int = 8) -> np.ndarray:
    """Convert a ``(1, C, H, W)`` or ``(C, H, W)`` tensor in [0, 1] to an ``(H, W, C)`` integer array.

    Values are clamped to [0, 1] and rounded to the nearest code value of ``bit_depth`` (8 or 16).
    """
    if img.dim() == 4:
        if img.shape[0] != 1:
            raise ValueError(f"to_array takes one image, got a batch of {img.shape[0]}")
        img = img[0]
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    scale = 255.0 if bit_depth == 8 else 65535.0
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    arr = img.detach().float().clamp(0, 1).mul(scale).add_(0.5).floor_().permute(1, 2, 0).cpu().numpy()
    return arr.astype(dtype)


def format_for_path(path: str | os.PathLike) -> str | None:
    """Canonical format implied by a file name's extension, or ``None`` if it implies none we write."""
    return _SUFFIX_TO_FORMAT.get(Path(path).suffix.lower())


def extension_for_format(fmt: str) -> str:
    """File extension (with dot) for a canonical format name."""
    try:
        return WRITABLE_FORMATS[fmt]
    except KeyError:
        raise ValueError(f"unknown output format {fmt!r}; choose one of {', '.join(WRITABLE_FORMATS)}") from None


# --------------------------------------------------------------------------------------------- #
# reading
# --------------------------------------------------------------------------------------------- #
def _read_bytes(path: Path) -> bytes:
    try:
        if path.is_dir():
            raise ImageReadError(f"{path}: is a folder, not an image file")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except PermissionError:
        raise ImageReadError(f"{path}: cannot read (permission denied)") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a folder, not an image file") from None
    except OSError as e:
        raise ImageReadError(f"{path}: cannot read ({e.strerror or e})") from None
    if not data:
        raise EmptyImageFileError(f"{path}: empty file (0 bytes), not an image")
    return data


def _is_sixteen_bit(im: Image.Image, data: bytes) -> bool:
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        return True
    if im.format == "PNG" and len(data) > 24 and data[12:16] == b"IHDR":
        return data[24] == 16
    for tile in getattr(im, "tile", None) or []:
        rawmode = tile[3] if len(tile) > 3 else None
        if isinstance(rawmode, tuple):
            rawmode = rawmode[0] if rawmode else None
        if isinstance(rawmode, str) and "16" in rawmode and im.mode not in ("P", "PA"):
            return True
    return False


def _orientation(im: Image.Image) -> tuple[int, bytes | None]:
    try:
        exif = im.getexif()
    except Exception:  # noqa: BLE001 - malformed EXIF must not stop us reading pixels
        return 1, None
    orientation = int(exif.get(0x0112, 1) or 1)
    if not exif:
        return orientation, None
    try:
        carried = Image.Exif()  # a copy: Pillow caches getexif(), and exif_transpose still needs the tag
        carried.load(exif.tobytes())
        if 0x0112 in carried:
            carried[0x0112] = 1
        return orientation, carried.tobytes()
    except Exception:  # noqa: BLE001
        return orientation, None


def _apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Rotate/flip ``arr`` (H, W[, C]) as EXIF orientation ``1..8`` prescribes."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(arr)) if op else arr


def _decode_sixteen(data: bytes, path: Path, fmt: str) -> tuple[np.ndarray, np.ndarray | None, bool]:
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise CorruptImageError(f"{path}: corrupt or truncated 16-bit {fmt.upper()} data")
    if arr.dtype != np.uint16:
        arr = arr.astype(np.uint16) * 257 if arr.dtype == np.uint8 else np.clip(arr, 0, 65535).astype(np.uint16)
    alpha = None
    gray = False
    if arr.ndim == 2:
        gray = True
        rgb = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.shape[2] == 1:
        gray = True
        rgb = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 2:  # gray + alpha
        gray = True
        rgb = np.repeat(arr[:, :, :1], 3, axis=2)
        alpha = np.ascontiguousarray(arr[:, :, 1])
    elif arr.shape[2] == 3:
        rgb = np.ascontiguousarray(arr[:, :, ::-1])
    else:
        rgb = np.ascontiguousarray(arr[:, :, 2::-1])
        alpha = np.ascontiguousarray(arr[:, :, 3])
    return rgb, alpha, gray


_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _decode_float_tiff(data: bytes, path: Path) -> tuple[np.ndarray, np.ndarray | None, bool] | None:
    """Pixels of a floating-point TIFF as float32 in [0, 1] (RGB, alpha, grayscale), or ``None`` when the TIFF
    does not hold floating-point samples. Values outside [0, 1] are clipped, and NaN or infinite ones set to 0,
    with a warning that says how many."""
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or not np.issubdtype(arr.dtype, np.floating):
        return None
    arr = arr.astype(np.float32, copy=False)
    bad = ~np.isfinite(arr)
    outside = int(((arr < 0) | (arr > 1)).sum())
    if bad.any() or outside:
        lo, hi = float(np.nanmin(np.where(bad, np.nan, arr))), float(np.nanmax(np.where(bad, np.nan, arr)))
        warnings.warn(
            f"{path}: floating-point TIFF with {outside:,} values outside [0, 1] (range {lo:.3g} to {hi:.3g}) "
            f"and {int(bad.sum()):,} NaN/infinite ones: clipped to [0, 1]",
            stacklevel=3,
        )
        arr = np.clip(np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    alpha, gray = None, False
    if arr.ndim == 2 or arr.shape[2] == 1:
        gray, rgb = True, np.repeat(arr.reshape(*arr.shape[:2], 1), 3, axis=2)
    elif arr.shape[2] == 2:
        gray, rgb, alpha = True, np.repeat(arr[:, :, :1], 3, axis=2), np.ascontiguousarray(arr[:, :, 1])
    elif arr.shape[2] == 3:
        rgb = np.ascontiguousarray(arr[:, :, ::-1])
    else:
        rgb, alpha = np.ascontiguousarray(arr[:, :, 2::-1]), np.ascontiguousarray(arr[:, :, 3])
    return rgb, alpha, gray


def _cmyk_to_rgb(im: Image.Image) -> Image.Image:
    profile = im.info.get("icc_profile")
    if profile:
        try:
            src = ImageCms.ImageCmsProfile(_io.BytesIO(profile))
            dst = ImageCms.createProfile("sRGB")
            return ImageCms.profileToProfile(im, src, dst, outputMode="RGB")
        except Exception:  # noqa: BLE001 - fall back to the plain conversion on a broken profile
            pass
    return im.convert("RGB")


def _decode_pillow(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None, bool, int]:
    """Pixels of a loaded 8-bit Pillow image as (rgb uint8, alpha, grayscale, bit_depth)."""
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
        mode = im.mode
    elif mode == "PA":
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode == "1":
        im = im.convert("L")
        mode = "L"
    if mode == "F":
        a = np.asarray(im, dtype=np.float32)
        a = a / 255.0 if np.nanmax(a) > 1.0 else a
        g = (np.clip(np.nan_to_num(a), 0, 1) * 65535 + 0.5).astype(np.uint16)
        return np.repeat(g[:, :, None], 3, axis=2), None, True, 16
    if mode == "L":
        g = np.asarray(im)
        return np.repeat(g[:, :, None], 3, axis=2), None, True, 8
    if mode == "LA":
        a = np.asarray(im)
        return np.repeat(a[:, :, :1], 3, axis=2), np.ascontiguousarray(a[:, :, 1]), True, 8
    if mode == "CMYK":
        im = _cmyk_to_rgb(im)
        mode = "RGB"
    if mode in ("RGBA", "RGBa"):
        if mode == "RGBa":
            im = im.convert("RGBA")
        a = np.asarray(im)
        return np.ascontiguousarray(a[:, :, :3]), np.ascontiguousarray(a[:, :, 3]), False, 8
    if mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im).copy(), None, False, 8


def load_image(path: str | os.PathLike) -> ImageRecord:
    """Read an image file by its content.

    Args:
        path: the file to read. Its extension is ignored; the content decides the format.

    Returns:
        an :class:`ImageRecord` holding ``uint8`` or ``uint16`` RGB pixels (EXIF orientation applied),
        the alpha channel if any, and what is needed to write a result back in the same form.

    Raises:
        EmptyImageFileError: the file is empty.
        UnsupportedImageError: the content is not an image format clearsight reads.
        CorruptImageError: the image data is truncated or damaged.
        ImageTooLargeError: the image has more pixels than :func:`max_pixels`.
        ImageReadError: the file is missing or cannot be read.
    """
    path = Path(path)
    data = _read_bytes(path)
    limit = max_pixels()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        previous = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None  # we enforce our own limit below, with our own message
        try:
            try:
                im = Image.open(_io.BytesIO(data))
                if im.format == "TIFF" and im.mode == "F":  # one floating-point channel: keep the floats
                    raise UnidentifiedImageError
            except UnidentifiedImageError:
                if data[:4] in _TIFF_MAGIC:  # Pillow reads no multi-channel floating-point TIFF
                    try:
                        decoded = _decode_float_tiff(data, path)
                    except MemoryError:
                        raise ImageTooLargeError(f"{path}: image does not fit in memory") from None
                    if decoded is not None:
                        rgb, alpha, gray = decoded
                        h, w = rgb.shape[:2]
                        if w * h > limit:
                            raise ImageTooLargeError(
                                f"{path}: {w}x{h} pixels is more than the limit of {limit:,}; "
                                f"raise CLEARSIGHT_MAX_PIXELS if the file is trusted"
                            ) from None
                        return ImageRecord(rgb=rgb, alpha=alpha, bit_depth=32, format="tif", grayscale=gray,
                                           source_mode="F", path=str(path))  # fmt: skip
                head = data[:8]
                hint = " (looks like text)" if all(32 <= b < 127 or b in (9, 10, 13) for b in head) else ""
                raise UnsupportedImageError(
                    f"{path}: not an image, or an image format clearsight cannot read{hint}"
                ) from None
            except (OSError, SyntaxError, ValueError) as e:
                raise CorruptImageError(f"{path}: corrupt image header ({e})") from None
            fmt = _PIL_TO_FORMAT.get(im.format or "", "png")
            w, h = im.size
            if w * h > limit:
                raise ImageTooLargeError(
                    f"{path}: {w}x{h} pixels is more than the limit of {limit:,}; "
                    f"raise CLEARSIGHT_MAX_PIXELS if the file is trusted"
                )
            if w == 0 or h == 0:
                raise CorruptImageError(f"{path}: image has zero width or height")
            orientation, exif = _orientation(im)
            icc = im.info.get("icc_profile")
            source_mode = im.mode
            try:
                if _is_sixteen_bit(im, data):
                    rgb, alpha, gray = _decode_sixteen(data, path, fmt)
                    rgb = _apply_orientation(rgb, orientation)
                    alpha = _apply_orientation(alpha, orientation) if alpha is not None else None
                    bit_depth = 16
                else:
                    im.load()
                    im = ImageOps.exif_transpose(im) if orientation != 1 else im
                    if im.mode == "CMYK":
                        icc = None  # converted to sRGB; the CMYK profile no longer applies
                    rgb, alpha, gray, bit_depth = _decode_pillow(im)
            except ImageReadError:
                raise
            except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as e:
                raise CorruptImageError(f"{path}: corrupt or truncated {fmt.upper()} data ({e})") from None
            except MemoryError:
                raise ImageTooLargeError(f"{path}: {w}x{h} image does not fit in memory") from None
        finally:
            Image.MAX_IMAGE_PIXELS = previous
    return ImageRecord(
        rgb=rgb,
        alpha=alpha,
        bit_depth=bit_depth,
        format=fmt,
        grayscale=gray,
        source_mode=source_mode,
        icc_profile=icc,
        exif=exif,
        path=str(path),
    )


def read_image(path: str | os.PathLike) -> torch.Tensor:
    """Read an image file into the library's tensor contract.

    Args:
        path: image file; decoded by content (PNG, JPEG, TIFF, BMP, WebP, GIF, ...).

    Returns:
        float32 tensor of shape :math:`(1, 3, H, W)`, RGB, values in [0, 1]. Alpha is dropped (use
        :func:`load_image` to keep it); grayscale is replicated to three channels.

    Example:
        >>> import clearsight as cs
        >>> img = cs.read_image("foggy.jpg")  # doctest: +SKIP
    """
    return load_image(path).to_tensor()


# --------------------------------------------------------------------------------------------- #
# writing
# --------------------------------------------------------------------------------------------- #
def hidden_name(path: str | os.PathLike, suffix: str) -> str:
    """``.NAME<suffix>``: the name of a hidden helper file of ``path`` (its temporary file, its lock), shortened
    with a hash when ``NAME`` is so long that the helper's name would pass the 255-byte limit of file names."""
    import hashlib

    name = Path(path).name
    if len(name.encode()) + len(suffix.encode()) > 200:
        digest = hashlib.sha1(name.encode()).hexdigest()[:12]
        name = name.encode()[:80].decode(errors="ignore") + "~" + digest
    return f".{name}{suffix}"


def temp_prefix(path: str | os.PathLike) -> str:
    """Prefix of the temporary files :func:`save_image` writes before renaming them over ``path``."""
    return hidden_name(path, ".")


def _atomic_write(path: Path, write) -> None:
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then rename it over ``path``."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ImageWriteError(f"{path}: output folder {folder} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".part", dir=folder)
    except PermissionError:
        raise ImageWriteError(f"{path}: cannot write (folder {folder} is not writable)") from None
    except OSError as e:
        raise ImageWriteError(f"{path}: cannot write ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            if os.fstat(f.fileno()).st_size != f.tell():  # belt and braces: every byte reached the disk
                raise ImageWriteError(f"{path}: cannot write (short write: the disk may be full)")
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except ImageWriteError:
        _unlink_quietly(tmp)
        raise
    except PermissionError:
        _unlink_quietly(tmp)
        raise ImageWriteError(f"{path}: cannot write (permission denied)") from None
    except OSError as e:
        _unlink_quietly(tmp)
        raise ImageWriteError(f"{path}: cannot write ({e.strerror or e})") from None
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _unlink_quietly(p: str) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


def save_image(
    path: str | os.PathLike,
    rgb: np.ndarray,
    alpha: np.ndarray | None = None,
    *,
    format: str | None = None,  # noqa: A002 - mirrors Pillow's keyword
    grayscale: bool = False,
    quality: int = 95,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
) -> Path:
    """Write integer pixels atomically.

    Args:
        path: destination file; its folder must exist.
        rgb: ``(H, W, 3)`` ``uint8`` or ``uint16`` RGB pixels, or ``float32`` in [0, 1] (written as a
            floating-point TIFF for ``tif``, as 16-bit PNG or 8 bits elsewhere).
        alpha: optional ``(H, W)`` alpha of the same dtype; dropped for formats without alpha (JPEG, BMP).
        format: ``png``, ``jpg``, ``tif``, ``bmp`` or ``webp``; default: from the extension of ``path``.
        grayscale: write a single-channel image (luma of ``rgb``).
        quality: JPEG/WebP quality in [1, 100].
        icc_profile: colour profile to embed (PNG, JPEG, TIFF, WebP).
        exif: EXIF bytes to embed (JPEG, PNG, TIFF, WebP).

    Returns:
        the path written. 16-bit data is kept for PNG and TIFF and reduced to 8 bits otherwise; floating-point
        data stays floating point in TIFF.

    Raises:
        ImageWriteError: the file could not be written; no partial file is left behind.
    """
    path = Path(path)
    fmt = format or format_for_path(path)
    if fmt is None:
        raise ImageWriteError(
            f"{path}: cannot tell the output format from the extension; use one of {', '.join(WRITABLE_FORMATS)}"
        )
    if fmt not in WRITABLE_FORMATS:
        raise ImageWriteError(f"{path}: unknown output format {fmt!r}; use one of {', '.join(WRITABLE_FORMATS)}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageWriteError(f"{path}: pixels must have shape (H, W, 3), got {rgb.shape}")
    if fmt in ("jpg", "bmp"):
        alpha = None
    if np.issubdtype(rgb.dtype, np.floating):
        if fmt == "tif":
            return _save_float_tiff(path, rgb, alpha, grayscale)
        rgb = (np.clip(rgb, 0, 1) * 65535 + 0.5).astype(np.uint16)  # then 16-bit PNG, or 8 bits elsewhere
        alpha = (np.clip(alpha, 0, 1) * 65535 + 0.5).astype(np.uint16) if alpha is not None else None
    sixteen = rgb.dtype == np.uint16 and fmt in _SIXTEEN_BIT_FORMATS
    if rgb.dtype == np.uint16 and not sixteen:
        rgb = ((rgb.astype(np.uint32) + 128) // 257).astype(np.uint8)
        alpha = ((alpha.astype(np.uint32) + 128) // 257).astype(np.uint8) if alpha is not None else None
    if alpha is not None and alpha.dtype != rgb.dtype:
        alpha = (
            (alpha.astype(np.uint32) * 257).astype(np.uint16)
            if rgb.dtype == np.uint16
            else ((alpha.astype(np.uint32) + 128) // 257).astype(np.uint8)
        )
    if grayscale:
        luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        planes = [np.clip(luma + 0.5, 0, np.iinfo(rgb.dtype).max).astype(rgb.dtype)]
    else:
        planes = [rgb[:, :, i] for i in range(3)]

    if sixteen:
        import cv2

        chans = planes[::-1] if not grayscale else planes  # OpenCV wants BGR(A)
        if alpha is not None:
            chans = [*chans, alpha]
        arr = chans[0] if len(chans) == 1 else np.dstack(chans)
        ok, buf = cv2.imencode(WRITABLE_FORMATS[fmt], arr)
        if not ok:
            raise ImageWriteError(f"{path}: encoder failed for 16-bit {fmt.upper()}")
        _atomic_write(path, lambda f: f.write(buf.tobytes()))
        return path

    if grayscale:
        im = Image.fromarray(planes[0], "L")
        if alpha is not None:
            im = Image.merge("LA", (im, Image.fromarray(alpha, "L")))
    else:
        im = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
        if alpha is not None:
            im.putalpha(Image.fromarray(alpha, "L"))
    params: dict = {}
    if fmt in ("jpg", "webp"):
        params["quality"] = int(quality)
    if fmt == "jpg":
        params["subsampling"] = 0 if quality >= 90 else 2
    if fmt == "png":
        params["compress_level"] = 1 if rgb.size > 20_000_000 else 6
    if icc_profile and fmt in ("png", "jpg", "tif", "webp"):
        params["icc_profile"] = icc_profile
    if exif and fmt in ("jpg", "png", "tif", "webp"):
        params["exif"] = exif

    def _write(f) -> None:
        # encode in memory first: Pillow's encoders write straight to a file descriptor and ignore short
        # writes, so a full disk left a truncated JPEG that looked written; a Python file object raises instead
        data = _io.BytesIO()
        try:
            im.save(data, format=_FORMAT_TO_PIL[fmt], **params)
        except (ValueError, TypeError, KeyError) as e:
            raise ImageWriteError(f"{path}: encoder failed ({e})") from None
        f.write(data.getbuffer())

    _atomic_write(path, _write)
    return path


def _save_float_tiff(path: Path, rgb: np.ndarray, alpha: np.ndarray | None, grayscale: bool) -> Path:
    import cv2

    rgb = np.clip(rgb, 0, 1).astype(np.float32, copy=False)
    if grayscale:
        chans = [rgb @ np.array([0.299, 0.587, 0.114], np.float32)]
    else:
        chans = [rgb[:, :, 2], rgb[:, :, 1], rgb[:, :, 0]]  # OpenCV wants BGR(A)
    if alpha is not None:
        a = alpha.astype(np.float32)
        chans.append(a / np.float32(np.iinfo(alpha.dtype).max) if np.issubdtype(alpha.dtype, np.integer) else a)
    arr = chans[0] if len(chans) == 1 else np.dstack(chans)
    ok, buf = cv2.imencode(".tif", np.ascontiguousarray(arr))
    if not ok:
        raise ImageWriteError(f"{path}: encoder failed for a floating-point TIFF")
    _atomic_write(path, lambda f: f.write(buf.tobytes()))
    return path


def write_image(
    path: str | os.PathLike,
    img: torch.Tensor,
    *,
    alpha: torch.Tensor | np.ndarray | None = None,
    bit_depth: int = 8,
    format: str | None = None,  # noqa: A002
    quality: int = 95,
) -> Path:
    """Write a tensor image atomically.

    Args:
        path: destination file; the format comes from its extension unless ``format`` is given.
        img: float tensor :math:`(1, 3, H, W)` or :math:`(3, H, W)` in [0, 1] (values outside are clamped).
        alpha: optional alpha, :math:`(1, 1, H, W)` tensor in [0, 1] or ``(H, W)`` integer array.
        bit_depth: 8, or 16 for PNG/TIFF.
        format: ``png``, ``jpg``, ``tif``, ``bmp`` or ``webp``.
        quality: JPEG/WebP quality in [1, 100].

    Example:
        >>> import clearsight as cs
        >>> cs.write_image("clear.png", torch.rand(1, 3, 8, 8))  # doctest: +SKIP
    """
    check_shape(img if img.dim() == 4 else img[None], ["1", "3", "H", "W"], "img")
    rgb = to_array(img, bit_depth)
    a = None
    if alpha is not None:
        if isinstance(alpha, torch.Tensor):
            a = to_array(alpha.reshape(1, 1, *alpha.shape[-2:]), bit_depth)[:, :, 0]
        else:
            a = np.asarray(alpha)
    return save_image(path, rgb, a, format=format, quality=quality)
