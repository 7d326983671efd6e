#!/usr/bin/env bash
# Fresh-machine set-up: a venv in .venv with CPU torch and qwenlong-verl (a normal, non-editable install, the way
# users get it), pinned to the versions in .ci/constraints.txt. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
# setuptools builds in ./build and never empties it: a module moved or deleted since the last set-up would be
# installed again from there (git ignores build/; it holds nothing but that copy)
rm -rf build
.venv/bin/python -m pip install --quiet -c .ci/constraints.txt ".[test]"
.venv/bin/qwenlong-verl doctor
