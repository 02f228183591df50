"""The command line, end to end, through a subprocess."""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import hazy_scene, run_cli, to_u8
from PIL import Image

from clearsight.io import load_image, save_image


def _good(folder: Path, name: str, seed: int = 0, size=(60, 80)) -> Path:
    p = folder / name
    save_image(p, to_u8(hazy_scene(*size, seed=seed)[0]), format="jpg" if name.endswith(".jpg") else "png")
    return p


def _bad_files(folder: Path) -> dict[str, Path]:
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("this is a text file, not a photo\n")
    buf = io.BytesIO()
    Image.fromarray(to_u8(hazy_scene(120, 160)[0])).save(buf, "PNG")
    (folder / "cut.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    buf = io.BytesIO()
    Image.fromarray(to_u8(hazy_scene(120, 160)[0])).save(buf, "JPEG")
    (folder / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return {n: folder / n for n in ("empty.jpg", "notes.jpg", "cut.png", "cut.jpg")}


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.startswith(".") or p.suffix == ".part"]


def test_help_and_models():
    r = run_cli("--help")
    assert r.returncode == 0 and "restore" in r.stdout
    r = run_cli("restore", "--help")
    assert r.returncode == 0 and "examples:" in r.stdout and "--tile" in r.stdout
    r = run_cli("models")
    assert r.returncode == 0
    names = [line.split()[0] for line in r.stdout.splitlines()]
    assert {"auto", "dcp", "dcp-dust", "dcp-night", "corun.haze"} <= set(names)
    assert run_cli().returncode == 2
    assert run_cli("restore", "x.png").returncode == 2  # -o is required


def test_batch_isolates_bad_inputs(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    good = [_good(src, "a.png", 0), _good(src, "b.jpg", 1)]
    bad = _bad_files(src)
    missing = tmp_path / "missing.png"
    r = run_cli("restore", str(src), str(missing), "-o", str(out), "-q")
    assert r.returncode == 1, r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == len(bad) + 1
    for p in [*bad.values(), missing]:
        matching = [e for e in errors if str(p) in e]
        assert len(matching) == 1, (p, errors)
    assert "empty file" in next(e for e in errors if "empty.jpg" in e)
    assert "not an image" in next(e for e in errors if "notes.jpg" in e)
    assert "truncated" in next(e for e in errors if "cut.png" in e)
    assert "truncated" in next(e for e in errors if "cut.jpg" in e)
    # the good files were restored, nothing else was written, and no temporary files remain
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.jpg"]
    assert _leftovers(out) == []
    for g in good:
        assert load_image(out / g.name).rgb.shape == load_image(g).rgb.shape
    assert "restored 2, skipped 0, failed 5" in r.stdout


def test_resume_skips_existing_and_overwrite_redoes(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    _good(src, "a.png")
    _good(src, "b.png", 1)
    assert run_cli("restore", str(src), "-o", str(out), "-q").returncode == 0
    before = (out / "a.png").stat().st_mtime_ns
    (out / "b.png").unlink()  # as if the run had been interrupted before b
    r = run_cli("restore", str(src), "-o", str(out), "-q")
    assert r.returncode == 0 and "restored 1, skipped 1, failed 0" in r.stdout
    assert (out / "a.png").stat().st_mtime_ns == before
    r = run_cli("restore", str(src), "-o", str(out), "-q", "--overwrite")
    assert "restored 2, skipped 0" in r.stdout


def test_never_writes_onto_an_input(tmp_path):
    p = _good(tmp_path, "a.png")
    original = p.read_bytes()
    r = run_cli("restore", str(p), "-o", str(tmp_path), "-q", "--overwrite")
    assert r.returncode == 1 and "refusing" in r.stderr and str(p) in r.stderr
    assert p.read_bytes() == original


def test_formats_follow_content_unless_told(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    _good(src, "a.jpg")
    _good(src, "b.png")
    buf = io.BytesIO()
    Image.fromarray(to_u8(hazy_scene(40, 50)[0])).save(buf, "PNG")
    (src / "c.jpg").write_bytes(buf.getvalue())  # a PNG named .jpg
    assert run_cli("restore", str(src), "-o", str(out), "-q").returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.png", "c.png"]
    assert load_image(out / "c.png").format == "png"
    out2 = tmp_path / "out2"
    assert run_cli("restore", str(src), "-o", str(out2), "-q", "--format", "tif").returncode == 0
    assert sorted(p.name for p in out2.iterdir()) == ["a.tif", "b.tif", "c.tif"]


def test_alpha_gray_16bit_and_exif_through_cli(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    hz = hazy_scene(50, 70)[0]
    alpha = np.tile(np.linspace(0, 255, 70).astype(np.uint8), (50, 1))
    Image.fromarray(np.dstack([to_u8(hz), alpha]), "RGBA").save(src / "rgba.png")
    Image.fromarray(to_u8(hz.mean(axis=2)), "L").save(src / "gray.png")
    cv2.imwrite(str(src / "deep.png"), (hz[:, :, ::-1] * 65535).astype(np.uint16))
    im = Image.fromarray(to_u8(hz))
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(src / "rotated.jpg", exif=exif.tobytes())
    Image.fromarray(to_u8(hz)).convert("CMYK").save(src / "print.jpg")
    Image.fromarray(to_u8(hz)).convert("P", palette=Image.Palette.ADAPTIVE).save(src / "pal.png")
    Image.fromarray(np.array([[[200, 210, 220]]], np.uint8)).save(src / "dot.png")
    r = run_cli("restore", str(src), "-o", str(out), "-q")
    assert r.returncode == 0, r.stderr
    rgba = Image.open(out / "rgba.png")
    assert rgba.mode == "RGBA" and np.array_equal(np.asarray(rgba)[:, :, 3], alpha)
    assert Image.open(out / "gray.png").mode == "L"
    deep = load_image(out / "deep.png")
    assert deep.bit_depth == 16 and len(np.unique(deep.rgb)) > 256
    assert Image.open(out / "rotated.jpg").size == (50, 70)  # upright: width 50, height 70
    assert Image.open(out / "print.jpg").mode == "RGB"
    assert Image.open(out / "dot.png").size == (1, 1)
    assert Image.open(out / "pal.png").mode == "RGB"


def test_glob_and_recursive(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    _good(src, "a.png")
    _good(src / "sub", "b.png", 1)
    r = run_cli("restore", str(src), "-o", str(tmp_path / "flat"), "-q")
    assert sorted(p.name for p in (tmp_path / "flat").rglob("*.png")) == ["a.png"]
    r = run_cli("restore", str(src), "-r", "-o", str(tmp_path / "deep"), "-q")
    assert r.returncode == 0 and (tmp_path / "deep" / "sub" / "b.png").exists()
    r = run_cli("restore", str(src / "*.png"), "-o", str(tmp_path / "glob"), "-q")
    assert r.returncode == 0 and (tmp_path / "glob" / "a.png").exists()
    r = run_cli("restore", str(src / "*.tif"), "-o", str(tmp_path / "none"), "-q")
    assert r.returncode == 1 and "no files match" in r.stderr


# ---------------------------------------------------------------------------------------------- #
# permissions: root ignores file modes, so those tests run the CLI as an unprivileged user
# ---------------------------------------------------------------------------------------------- #
@pytest.fixture
def unprivileged():
    """A command prefix that runs the CLI as user nobody (root ignores file modes), or None.

    A checkout in a private folder (mode 700, e.g. from ``mktemp -d``) cannot be read by nobody, so the
    folders on the way to the interpreter and the package get the traverse bit (o+x) for the duration of
    the test and their modes are restored afterwards.
    """
    if os.geteuid() != 0:
        yield []
        return
    setpriv = shutil.which("setpriv")
    if not setpriv:
        yield None
        return
    import stat

    import clearsight

    changed: list[tuple[Path, int]] = []
    for leaf in {Path(sys.prefix).resolve(), Path(clearsight.__file__).resolve().parent}:
        for d in [leaf, *leaf.parents]:
            mode = d.stat().st_mode
            if not mode & stat.S_IXOTH:
                d.chmod(mode | stat.S_IXOTH)
                changed.append((d, mode))
    prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run([*prefix, sys.executable, "-c", "import clearsight.cli"], capture_output=True)
    try:
        yield prefix if probe.returncode == 0 else None
    finally:
        for d, mode in reversed(changed):
            d.chmod(stat.S_IMODE(mode))


@pytest.fixture
def shared_tmp():
    d = Path(tempfile.mkdtemp(prefix="clearsight-perm-"))
    d.chmod(0o777)
    yield d
    for p in d.rglob("*"):
        p.chmod(0o777) if p.is_dir() else None
    shutil.rmtree(d, ignore_errors=True)


def test_unreadable_file_and_unwritable_folder(shared_tmp, unprivileged):
    prefix = unprivileged
    if prefix is None:
        pytest.skip("running as root without a way to drop privileges (setpriv)")
    src = shared_tmp / "in"
    src.mkdir()
    src.chmod(0o777)
    good = _good(src, "a.png")
    locked = _good(src, "locked.png", 1)
    for p in (good, locked):
        p.chmod(0o644)
    locked.chmod(0o000)
    out = shared_tmp / "out"
    out.mkdir()
    out.chmod(0o777)
    r = run_cli("restore", str(src), "-o", str(out), "-q", prefix=prefix)
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(locked) in errors[0] and "permission denied" in errors[0]
    assert sorted(p.name for p in out.iterdir()) == ["a.png"]

    ro = shared_tmp / "readonly"
    ro.mkdir()
    ro.chmod(0o555)
    locked.chmod(0o644)
    r = run_cli("restore", str(src), "-o", str(ro), "-q", prefix=prefix)
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and all("not writable" in e for e in errors)
    assert any(str(good) in e for e in errors) and any(str(locked) in e for e in errors)
    assert list(ro.iterdir()) == []


@pytest.mark.slow
def test_huge_image_is_tiled_with_flat_memory(tmp_path):
    h, w = 8000, 10000
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    xx = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    img = np.empty((h, w, 3), np.uint8)
    img[:, :, 0] = (150 + 80 * yy + 20 * np.sin(xx * 60)).astype(np.uint8)
    img[:, :, 1] = (160 + 70 * yy + 20 * np.cos(xx * 45)).astype(np.uint8)
    img[:, :, 2] = (170 + 60 * yy).astype(np.uint8) + (xx * 20).astype(np.uint8)
    src = tmp_path / "huge.jpg"
    assert cv2.imwrite(str(src), img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    del img
    out = tmp_path / "out"
    code = (
        "import resource, sys\n"
        "from clearsight.cli import main\n"
        f"rc = main(['restore', {str(src)!r}, '-o', {str(out)!r}, '-q'])\n"
        "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        "sys.exit(rc)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    peak_gb = int(r.stdout.split("PEAK_KB")[1].split()[0]) / 1024**2
    print(f"10000x8000 restore: peak RSS {peak_gb:.2f} GB")
    assert peak_gb < 3.0, f"peak memory {peak_gb:.2f} GB"
    with Image.open(out / "huge.jpg") as res:
        assert res.size == (w, h)


def test_demo_runs(tmp_path):
    r = run_cli("demo", "-o", str(tmp_path / "demo"))
    assert r.returncode == 0, r.stderr
    assert "before -> after" in r.stdout and "auto->dcp" in r.stdout  # street_fog.jpg is dehazed
    assert len(list((tmp_path / "demo").iterdir())) == 4


def test_synth_and_stats_end_to_end(tmp_path):
    clean = tmp_path / "clean"
    clean.mkdir()
    for i in range(2):
        _good(clean, f"c{i}.png", i, size=(60, 80))
    out = tmp_path / "synth"
    synth = ["synth", "--preset", "day_haze", "--clean", str(clean), "--per-image", "2", "--seed", "5"]
    synth += ["--size", "64", "-q"]
    r = run_cli(*synth, "--out", str(out))
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in (out / "degraded").iterdir())
    assert names == ["c0_0.png", "c0_1.png", "c1_0.png", "c1_1.png"]
    assert names == sorted(p.name for p in (out / "clean").iterdir())
    assert (out / "depth" / "c0_0.png").exists() and (out / "transmission" / "c0_0.png").exists()
    import json

    meta = json.loads((out / "params" / "c0_0.json").read_text())
    assert meta["preset"] == "day_haze" and "0.day_haze.beta" in meta["params"]
    first = (out / "degraded" / "c0_0.png").read_bytes()
    # deterministic: a second run into a fresh folder gives the same bytes; a rerun resumes
    r2 = run_cli(*synth, "--out", str(tmp_path / "again"))
    assert r2.returncode == 0 and (tmp_path / "again" / "degraded" / "c0_0.png").read_bytes() == first
    r3 = run_cli(*synth, "--out", str(out))
    assert "skipped 4" in r3.stdout
    plot = tmp_path / "stats.png"
    stats = ["stats", str(out / "degraded"), str(clean), "--reference", str(clean), "--plot", str(plot), "-q"]
    r = run_cli(*stats, "--json", str(tmp_path / "s.json"))
    assert r.returncode == 0, r.stderr
    assert "dark_channel" in r.stdout and "distance from" in r.stdout and plot.stat().st_size > 1000
    assert run_cli("synth", "--preset", "nope", "--clean", str(clean), "--out", str(out)).returncode != 0
    (tmp_path / "empty").mkdir()
    for preset in ("day_haze", "dynamic"):  # a folder without images is an error, not "wrote 0"
        r = run_cli("synth", "--preset", preset, "--clean", str(tmp_path / "empty"), "--out", str(tmp_path / "e"))
        assert r.returncode == 1 and "no clean images found" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "e").exists()


def test_output_folder_inside_input_is_not_rescanned(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    _good(src, "a.png")
    out = src / "restored"
    assert run_cli("restore", str(src), "-r", "-o", str(out), "-q").returncode == 0
    r = run_cli("restore", str(src), "-r", "-o", str(out), "-q")
    assert r.returncode == 0 and "restored 0, skipped 1, failed 0" in r.stdout
    assert not (out / "restored").exists()


def test_output_folder_equal_to_the_input_folder_is_refused_and_nothing_is_dropped_silently(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    for n in ("a.png", "b.png", "c.jpg"):
        _good(src, n)
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    r = run_cli("restore", str(src), "-o", str(src), "-q")
    assert r.returncode == 1 and "is the input folder" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
    # named by a pattern: every file is accounted for (restored beside its input under another format, or
    # reported), none left out silently
    r = run_cli("restore", str(src / "*.*"), "-o", str(src), "-q", "--format", "png")
    assert r.returncode == 1, r.stdout
    assert "restored 1, skipped 0, failed 2" in r.stdout and r.stdout.count("refusing to write") == 2
    assert (src / "c.png").is_file() and all((src / n).read_bytes() == b for n, b in before.items())


def test_score_end_to_end(tmp_path):
    src, ref = tmp_path / "restored", tmp_path / "clean"
    src.mkdir()
    ref.mkdir()
    _good(src, "a.png", 0, size=(200, 240))
    _good(ref, "a.png", 1, size=(200, 240))
    r = run_cli("score", str(src), "--metrics", "niqe,haze_score,entropy", "--json", str(tmp_path / "s.json"))
    assert r.returncode == 0, r.stderr
    import json

    rows = json.loads((tmp_path / "s.json").read_text())
    assert len(rows) == 1 and set(rows[0]) == {"file", "niqe", "haze_score", "entropy"}
    r = run_cli("score", str(src), "--reference", str(ref), "--csv", str(tmp_path / "s.csv"))
    assert r.returncode == 0 and "psnr" in r.stdout and (tmp_path / "s.csv").read_text().startswith("file,psnr,ssim")
    assert run_cli("score", str(src), "--metrics", "psnr").returncode == 2
    bad = run_cli("score", str(src), "--metrics", "niqee")
    assert bad.returncode == 1 and "did you mean niqe" in bad.stderr


def test_bench_end_to_end(tmp_path):
    hazy, clean, real = tmp_path / "hazy", tmp_path / "clean", tmp_path / "real"
    for d in (hazy, clean, real):
        d.mkdir()
    for i in range(2):
        hz, cl, _ = hazy_scene(64, 80, seed=i)
        save_image(hazy / f"{i}_x.png", to_u8(hz))
        save_image(clean / f"{i}.png", to_u8(cl))
        save_image(real / f"r{i}.jpg", to_u8(hz))
    out = tmp_path / "rep"
    r = run_cli(
        "bench", "--methods", "dcp,dcp-dust", "--paired", str(hazy), str(clean), "--unpaired", str(real),
        "--fr-metrics", "psnr,ssim", "--nr-metrics", "haze_score,entropy", "--crops", "--judge", "-o", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    import json

    res = json.loads(out.with_suffix(".json").read_text())
    assert res["paired"]["hazy"]["n"] == 2 and res["unpaired"]["real"]["n"] == 2
    sc = res["paired"]["hazy"]["scores"]
    assert sc["dcp"]["psnr"] > sc["input"]["psnr"]  # dehazing helps on synthetic haze
    assert res["speed"]["dcp"]["seconds_per_megapixel"] > 0
    assert 0 <= res["unpaired"]["real"]["scores"]["dcp"]["harm_rate"] <= 1
    page = out.with_suffix(".html").read_text()
    assert "<table>" in page and "data:image/png;base64" in page and "data:image/jpeg;base64" in page
    assert run_cli("bench", "--methods", "dcp").returncode == 2
    (tmp_path / "empty").mkdir()
    r = run_cli("bench", "--methods", "dcp", "--unpaired", str(tmp_path / "empty"), "-o", str(tmp_path / "e"))
    assert r.returncode == 1 and "folder holds no images" in r.stderr and not (tmp_path / "e.json").exists()


def _options() -> dict[str, list[str]]:
    from clearsight.cli.main import build_parser

    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    out = {"": sorted(s for a in p._actions for s in a.option_strings)}
    for name, sp in sub.choices.items():
        out[name] = sorted(
            [s for a in sp._actions for s in a.option_strings]
            + [a.dest.upper() for a in sp._actions if not a.option_strings]
        )
    return out


def test_every_command_keeps_its_options():
    """The commands and their options as recorded in cli_options.json: a refactoring must not lose one (add new
    ones to the file on purpose)."""
    expected = json.loads((Path(__file__).with_name("cli_options.json")).read_text())
    got = _options()
    assert list(got) == list(expected), "commands added, removed or reordered"
    for cmd, opts in expected.items():
        assert got[cmd] == opts, (
            f"clearsight {cmd}: options changed: -{set(opts) - set(got[cmd])} +{set(got[cmd]) - set(opts)}"
        )


def test_out_of_memory_is_one_failed_file_not_a_kill_or_a_traceback(tmp_path):
    """With the process's data memory capped (as the CLI caps it at 90% of the machine), a network pass at full
    resolution that does not fit fails that file with one line; the batch goes on and exits 1."""
    import resource

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (int(2.5 * 2**30), int(2.5 * 2**30)))

    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.random.default_rng(0).integers(0, 255, (2000, 1500, 3), dtype=np.uint8))
    _good(tmp_path, "small.png")
    cmd = [sys.executable, "-m", "clearsight", "restore", str(big), str(tmp_path / "small.png"), "-o",
           str(tmp_path / "out"), "-m", "corun.haze", "--max-pixels", "0", "--tile", "0", "--precision", "fp32",
           "-q"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=cap, timeout=600)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "big.png: out of memory" in r.stderr and "restored 1, skipped 0, failed 1" in r.stdout


def test_help_and_version_import_no_heavy_module():
    """Building every command's parser and printing the help imports neither torch nor OpenCV (fast start-up:
    benchmarks/cli_startup.py times it)."""
    code = (
        "import sys\n"
        "from clearsight.cli.main import build_parser, main\n"
        "p = build_parser(); p.format_help()\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'cv2', 'numpy', 'scipy') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "HEAVY []" in r.stdout, r.stdout + r.stderr
    # the lazily computed parts still show when asked for
    assert "day_haze" in run_cli("synth", "--help").stdout
    bad = run_cli("restore", "x.png", "-o", "out", "-m", "nope")
    assert bad.returncode == 2 and "'dcp'" in bad.stderr


def test_bench_judge_reports_the_harm_rate_of_each_method(tmp_path):
    from clearsight.bench import BenchConfig, run_bench
    from clearsight.priors.base import Restorer, RestorerState

    class Tint(Restorer):
        """A colour cast of a given strength (gains 1 leave the image as it is)."""

        name = "tint"

        def __init__(self, gains):
            self.gains = np.array(gains, np.float32)

        @property
        def halo(self) -> int:
            return 0

        def prepare(self, preview):
            return RestorerState(self.name, "", {})

        def process(self, x, state):
            return np.clip(x * self.gains, 0, 1)

    real = tmp_path / "real"
    real.mkdir()
    for i in range(3):
        hz, _, _ = hazy_scene(96, 128, seed=i)
        save_image(real / f"r{i}.png", to_u8(hz))
    cfg = BenchConfig(methods=["tint", "same"], unpaired=[("real", str(real))], nr_metrics=("haze_score",), judge=True)
    res = run_bench(cfg, progress=False, restorers={"tint": Tint([1.25, 1.0, 0.7]), "same": Tint([1, 1, 1])})
    sc = res["unpaired"]["real"]["scores"]
    assert sc["input"]["harm_rate"] == 0.0 and sc["same"]["harm_rate"] == 0.0
    assert sc["tint"]["harm_rate"] == 1.0  # a strong colour cast on every image
    named = res["unpaired"]["real"]["harms"]  # which harms, counted per method
    assert named["tint"]["colour_cast"] == 3 and named["same"] == {}
    assert "Harms the judge named: tint: colour_cast 3" in to_markdown_of(res)
    assert res["lower_better"]["harm_rate"] and "harm_rate" in to_markdown_of(res)


def to_markdown_of(res: dict) -> str:
    from clearsight.bench import to_markdown

    return to_markdown(res)
