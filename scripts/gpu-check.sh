#!/usr/bin/env bash
# The prepared GPU check, for a session that is lent the device machine (one call).
#
# Build here first (no GPU needed):
#   bash ../shared/cuda/setup.sh /opt/cuda13 && source /opt/cuda13/env.sh
#   cargo build --release --features cuda --target-dir target/cuda
# Then run this script on the device machine with
#   carry: ["target/cuda/release/skiplab", "target/cuda/release/build/dfdx-<hash>"]
# (that build folder holds dfdx's kernel headers, which NVRTC reads at run time from the
# absolute path compiled into the binary; the script links that path to the copy here).
# It writes parity.txt, bench.txt and train.txt under $OUT. Every step has its own time
# limit so a slow one still leaves the others' results.
set -u
OUT=${OUT:-/tmp/skiplab-gpu}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
B=target/cuda/release/skiplab
nvidia-smi -L | tee "$OUT/gpu.txt"
# The binary names its kernel folder by the absolute path it was built at.
compiled=$(grep -aoE '/[^ ]*/target/cuda/release/build/dfdx-[0-9a-f]+/out' "$B" | head -1)
compiled=${compiled#/usr/local/cuda/include}  # NVRTC's other include path precedes it in the binary
if [ -n "$compiled" ] && [ ! -d "$compiled" ]; then
  here="$PWD/target/${compiled#*/target/}"
  mkdir -p "$(dirname "$compiled")" 2>/dev/null && ln -s "$here" "$compiled" 2>/dev/null \
    || echo "note: cannot link $compiled -> $here; kernels compiled at run time may fail" | tee -a "$OUT/gpu.txt"
fi
step() { local limit=$1 file=$2; shift 2; echo "\$ $*" >>"$OUT/$file"; timeout "$limit" "$@" 2>&1 | tee -a "$OUT/$file"; echo "(exit ${PIPESTATUS[0]})" >>"$OUT/$file"; }
# One verdict line per check; exit status 1 when any fails.
step 90 parity.txt "$B" parity
# A real run on the built-in data: MLP with all skips, and a 2-stage CNN with a skip.
step 60 train.txt "$B" train --device cuda --skips all --epochs 3
step 90 train.txt "$B" train --device cuda --model cnn --widths 32,32/64,64 --skips 1-4 --epochs 2
# CUDA at the issue's batch sizes and 4x larger; then the CPU of the same machine.
step 150 bench.txt "$B" bench --device cuda --rounds 2 --steps 300 --cnn-steps 200 --no-torch
step 60 bench.txt "$B" bench --device cpu --rounds 1 --steps 300 --cnn-steps 60 --no-torch
