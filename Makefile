# Two commands do everything on a fresh machine (see README):
#   make demo   create .venv, install clearsight, restore the bundled samples, print a before/after table
#   make test   create .venv, install clearsight with its dev extras (and the dask, app, onnx extras), run the test suite
# torch is pinned through constraints.txt so that pip takes the CPU build and never a CUDA one.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
DEMO_OUT ?= demo-output

.PHONY: demo test e2e lint bench-classical bench-learned bench-baselines downstream samples clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.base: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e .
	@touch $@

$(VENV)/.dev: $(VENV)/.base
	$(PIP) -e '.[dev,dask,app,onnx]'
	@touch $@

demo: $(VENV)/.base
	$(BIN)/clearsight demo -o $(DEMO_OUT)

# The suite runs in TEST_WORKERS processes (pytest-xdist), one file per process, each with one torch thread: on
# 2 cores its pytest took 357-450 s (session 31), where one process with two threads had needed 754-898 s of CI
# (session 30; most tests are small tensors, process start-up and export tracing, which a second thread barely
# speeds up); two processes with two threads each oversubscribed the cores and took 1046 s.
TEST_WORKERS ?= 2
test: $(VENV)/.dev
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# the viewer in headless Chromium: installs Debian's chromium and chromium-driver (needs root or sudo) and selenium,
# then drives upload, restore and download; the screenshot goes to benchmarks/results/viewer.png
e2e: $(VENV)/.dev
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -q chromium chromium-driver
	$(PIP) 'selenium>=4.20'
	$(BIN)/python -m pytest -q tests/e2e

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests benchmarks scripts recipes

bench-classical: $(VENV)/.dev
	$(BIN)/python benchmarks/classical.py --data ../shared/data

bench-learned: $(VENV)/.dev
	$(BIN)/python benchmarks/learned.py --data ../shared/data

# extras for the downstream-task check (OCR with rapidocr's bundled PP-OCR models, OpenCV face detection)
downstream: $(VENV)/.dev
	$(PIP) -e '.[downstream]'
	$(PIP) --no-deps rapidocr==3.10.0

bench-baselines: downstream
	$(BIN)/python benchmarks/bench_baselines.py --data ../shared/data

samples: $(VENV)/.base
	$(BIN)/python scripts/make_samples.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
