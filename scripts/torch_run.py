#!/usr/bin/env python3
"""Runs a skiplab network exported with `skiplab export RUN --pytorch DIR` in PyTorch.

    torch_run.py DIR INPUT.f32 ROWS COLS OUTPUT.f32

Imports DIR/model.py, loads DIR/weights.safetensors with its `load`, and writes the logits
of INPUT (ROWS x COLS little-endian f32) to OUTPUT. Exit 3 when torch, safetensors or numpy
is missing (the Rust test then skips, saying so).
"""
import sys

try:
    import numpy as np
    import torch
    import safetensors  # noqa: F401 (model.load needs it)
except ImportError as e:
    print(f"missing: {e}", file=sys.stderr)
    sys.exit(3)


def main():
    folder, source, rows, cols, target = sys.argv[1:6]
    sys.path.insert(0, folder)
    from model import load

    net = load(f"{folder}/weights.safetensors")
    x = np.fromfile(source, dtype="<f4").reshape(int(rows), int(cols))
    with torch.no_grad():
        logits = net(torch.from_numpy(x))
    logits.numpy().astype("<f4").tofile(target)
    print(f"logits {tuple(logits.shape)}; torch {torch.__version__}")


if __name__ == "__main__":
    main()
