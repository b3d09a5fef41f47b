#!/usr/bin/env bash
# Fetch, on this machine, the wheels the GPU device lacks (Python 3.12, x86-64; it has torch, numpy 2,
# scipy, torch-geometric, click, tqdm, safetensors, pillow, matplotlib). They land in .whl/ (ignored by
# git; pass `carry: [".whl"]` to the device run, and ".whl-av" where video or audio runs), with mcodec's
# own wheel without its model files (rebuild after every change).
# On the device, start every command with (bench/gpu/gpu_session.sh setup does it):
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
#     && export PYTHONPATH=/tmp/site
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux_2_34_x86_64 --platform manylinux_2_35_x86_64)
PY=${PYTHON:-.venv/bin/python}
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${PLATFORMS[@]}" \
    -d .whl compressai==1.2.8 constriction==0.5.0 pytorch-msssim==1.0.0 \
    soundfile==0.14.0 cffi==2.1.1 pycparser==3.12  # ~1.6 MB: the audio run reads .gpu/audio (Ogg Opus) with it
# PyAV (36 MB) apart: only the video fits need it (audio training reads through soundfile without it), and a
# call's upload is capped at 64 MiB.
mkdir -p .whl-av
grep -qx '/.whl-av/' .git/info/exclude 2>/dev/null || echo '/.whl-av/' >> .git/info/exclude
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${PLATFORMS[@]}" \
    -d .whl-av av==18.1.0
rm -f .whl/mcodec-*.whl  # mcodec itself, built here: the device has no setuptools>=77 guarantee
$PY -m pip wheel -q --no-deps --no-build-isolation -w .whl .
rm -rf build
# Without its model files (~19 MB, already in the tree that travels): gpu_session.sh setup copies them in.
$PY - <<'PYEOF'
import glob, os, zipfile
path = glob.glob(".whl/mcodec-*.whl")[0]
with zipfile.ZipFile(path) as src, zipfile.ZipFile(path + ".tmp", "w", zipfile.ZIP_DEFLATED) as dst:
    for item in src.infolist():
        if not item.filename.endswith(".safetensors"):
            dst.writestr(item, src.read(item))
os.replace(path + ".tmp", path)
PYEOF
ls -la .whl .whl-av
