#!/usr/bin/env python3
"""Runs an exported skiplab model with engines no one at skiplab wrote.

    onnx_run.py MODEL.onnx INPUT.f32 ROWS COLS OUTPUT.f32

Checks the model with the `onnx` package (its checker, full, and strict shape inference)
where it is installed, runs it with ONNX Runtime on INPUT (ROWS x COLS little-endian f32),
and writes the logits to OUTPUT the same way. Prints one line: what checked it, the output
shape, and the ONNX Runtime version. Exit 3 when onnxruntime or numpy is missing (the Rust
tests then skip, saying so).
"""
import sys

try:
    import numpy as np
    import onnxruntime as ort
except ImportError as e:  # the caller skips
    print(f"missing: {e}", file=sys.stderr)
    sys.exit(3)


def main():
    model, source, rows, cols, target = sys.argv[1:6]
    checked = "not checked (no onnx package)"
    try:
        import onnx

        proto = onnx.load(model)
        onnx.checker.check_model(proto, full_check=True)
        onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
        checked = f"onnx {onnx.__version__} checker and shape inference passed"
    except ImportError:
        pass
    x = np.fromfile(source, dtype="<f4").reshape(int(rows), int(cols))
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"input": x})
    logits.astype("<f4").tofile(target)
    print(f"{checked}; logits {logits.shape}; onnxruntime {ort.__version__}")


if __name__ == "__main__":
    main()
