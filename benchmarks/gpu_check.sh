#!/usr/bin/env bash
# The prepared GPU check of issue 12 item 5 (docs/gpu_check.md): one command on an H100/H200 machine,
# run from the repository root:
#
#     bash benchmarks/gpu_check.sh [extra options of `python benchmarks/gpu_check.py run`]
#
# It reads the folder written on the CPU machine by `python benchmarks/gpu_check.py prepare` (carried along,
# default results/gpu_check_data; GPU_CHECK_DATA overrides) and writes under ${OUT:-results/gpu_check}.
# The repository is not pip-installed there, so src/ goes on PYTHONPATH. The python part plans itself into
# 420 s; the hard timeout stops an overrun (a slow compile, a stuck run) before the 8 minutes are up, and
# the tables written so far stay.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/gpu_check}
DATA=${GPU_CHECK_DATA:-results/gpu_check_data}
PY=${PYTHON:-python3}
LIMIT_S=${GPU_CHECK_LIMIT_S:-470}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# SIGINT first, so Python unwinds (scratch removed, summary kept); SIGKILL 20 s later if it does not.
timeout --signal=INT --kill-after=20 "$LIMIT_S" \
    "$PY" benchmarks/gpu_check.py run --data "$DATA" --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_check.log"
