#!/usr/bin/env bash
# The prepared GPU check, for a session that is lent the device machine (one call).
#
# Build here first (no GPU needed):
#   bash ../shared/cuda/setup.sh /opt/cuda13 && source /opt/cuda13/env.sh
#   cargo build --release --features cuda --target-dir target/cuda
# Then run this script on the device machine with
#   carry: ["target/cuda/release/skiplab", "target/cuda/release/build"]
# (the build folder holds dfdx's kernel headers, which NVRTC reads at run time).
# It writes parity.txt, bench.txt and train.txt under $OUT.
set -u
OUT=${OUT:-/tmp/skiplab-gpu}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
B=target/cuda/release/skiplab
nvidia-smi -L
# One verdict line per check; exit status 1 when any fails.
"$B" parity 2>&1 | tee "$OUT/parity.txt"
# CPU vs CUDA at the batch sizes; the PyTorch twin runs when python3 has torch.
"$B" bench --device cpu --large-batches --rounds 1 --steps 300 --cnn-steps 110 2>&1 | tee "$OUT/bench.txt"
"$B" bench --device cuda --large-batches --rounds 3 --steps 300 --cnn-steps 300 2>&1 | tee -a "$OUT/bench.txt"
# A real run on the built-in data.
"$B" train --device cuda --skips all --epochs 3 2>&1 | tee "$OUT/train.txt"
