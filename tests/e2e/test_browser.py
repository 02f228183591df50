"""``make e2e``: headless Chromium drives the viewer through upload, restore and download, and saves a
screenshot to ``benchmarks/results/viewer.png``. Skipped where Chromium, its driver or selenium is missing
(``make e2e`` installs them: Debian's ``chromium`` and ``chromium-driver``, selenium from PyPI)."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the suite's helpers (conftest)
from test_viewer import _Server  # noqa: E402

webdriver = pytest.importorskip("selenium.webdriver")
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs chromium and chromedriver (make e2e installs them)")
def test_upload_restore_download_in_a_browser(tmp_path):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from clearsight.viewer import create_app

    photo = tmp_path / "street_fog.jpg"  # a bundled sample photo, restored by auto
    shutil.copy(Path(__file__).resolve().parents[2] / "src" / "clearsight" / "samples" / "street_fog.jpg", photo)
    size = Image.open(photo).size
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    opts = Options()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1100"):
        opts.add_argument(a)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})  # fmt: skip
    with _Server(create_app()) as server:
        driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
        try:
            wait = WebDriverWait(driver, 180)
            driver.get(server.url("/"))
            wait.until(lambda d: len(Select(d.find_element(By.ID, "model")).options) > 3)
            Select(driver.find_element(By.ID, "model")).select_by_value("auto")
            driver.find_element(By.ID, "file").send_keys(str(photo))
            button = driver.find_element(By.ID, "go")
            wait.until(lambda d: button.is_enabled())
            button.click()
            wait.until(ec.visibility_of_element_located((By.ID, "verdict")))
            assert driver.find_element(By.ID, "verdict").text.startswith(("ok", "harmed"))
            assert driver.find_element(By.ID, "status").text.startswith("done in")
            wait.until(lambda d: d.execute_script("return document.getElementById('after').naturalWidth") > 0)
            driver.find_element(By.ID, "slider").send_keys("\ue012" * 10)  # arrow left: the split moves
            RESULTS.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(RESULTS / "viewer.png"))
            driver.find_element(By.ID, "download").click()
            target = downloads / "street_fog_restored.jpg"
            for _ in range(300):
                if target.is_file() and not list(downloads.glob("*.crdownload")):
                    break
                time.sleep(0.1)
            assert target.is_file()
            out = np.asarray(Image.open(target).convert("RGB"))
            assert out.shape == (size[1], size[0], 3)
            assert np.abs(out.astype(int) - np.asarray(Image.open(photo).convert("RGB"))).mean() > 2  # restored
        finally:
            driver.quit()
