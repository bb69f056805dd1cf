"""Writes tests/fixtures/norm_pytorch.json: PyTorch's BatchNorm1d and LayerNorm in a small
MLP (Linear without bias -> norm -> ReLU -> Linear), and BatchNorm2d in a small CNN, for `tests/gradients.rs` to compare
skiplab's normalisation against, so `cargo test` needs no Python.

For each norm: the parameters, a batch, its logits in training mode, the gradients of the
mean cross-entropy, batch norm's running estimates after that one training pass, and the
logits of a second batch in evaluation mode (`model.eval()`).

    python3 bench/norm_fixture.py   # torch 2.x
"""

import json
import pathlib

import torch

torch.manual_seed(7)
torch.set_default_dtype(torch.float64)
IN, HIDDEN, OUT, BATCH = 4, 5, 3, 8


def case(norm):
    lin1 = torch.nn.Linear(IN, HIDDEN, bias=False)
    layer = torch.nn.BatchNorm1d(HIDDEN) if norm == "batch" else torch.nn.LayerNorm(HIDDEN)
    lin2 = torch.nn.Linear(HIDDEN, OUT)
    with torch.no_grad():
        # A scale and shift away from 1 and 0, so both are seen at work.
        layer.weight.copy_(torch.rand(HIDDEN) + 0.5)
        layer.bias.copy_(torch.rand(HIDDEN) - 0.5)
    model = torch.nn.Sequential(lin1, layer, torch.nn.ReLU(), lin2)
    x = torch.randn(BATCH, IN) * 2 + 0.3
    y = torch.randint(0, OUT, (BATCH,))
    params = {
        # skiplab's weights are [inputs, outputs]: PyTorch's transposed.
        "fc1.w0": lin1.weight.detach().t().contiguous(),
        "fc1.gamma": layer.weight.detach().clone(),
        "fc1.beta": layer.bias.detach().clone(),
        "fc2.w1": lin2.weight.detach().t().contiguous(),
        "fc2.b": lin2.bias.detach().clone(),
    }
    model.train()
    logits = model(x)
    loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()
    grads = {
        "fc1.w0": lin1.weight.grad.t(),
        "fc1.gamma": layer.weight.grad,
        "fc1.beta": layer.bias.grad,
        "fc2.w1": lin2.weight.grad.t(),
        "fc2.b": lin2.bias.grad,
    }
    out = {
        "params": {k: v.flatten().tolist() for k, v in params.items()},
        "x": x.flatten().tolist(),
        "labels": y.tolist(),
        "train_logits": logits.detach().flatten().tolist(),
        "loss": loss.item(),
        "grads": {k: v.flatten().tolist() for k, v in grads.items()},
    }
    if norm == "batch":
        out["running_mean"] = layer.running_mean.tolist()
        out["running_var"] = layer.running_var.tolist()
    model.eval()
    x2 = torch.randn(BATCH, IN)
    with torch.no_grad():
        out["x_eval"] = x2.flatten().tolist()
        out["eval_logits"] = model(x2).flatten().tolist()
    return out


def cnn_case():
    """One stage of one 3x3 convolution (no bias) -> BatchNorm2d -> ReLU -> 2x2 max-pool, then
    the classifier on the channels-last flattening, as skiplab's CNN is laid out."""
    c_in, c, h, w, classes, batch = 2, 3, 4, 4, 3, 4
    conv = torch.nn.Conv2d(c_in, c, 3, padding=1, bias=False)
    bn = torch.nn.BatchNorm2d(c)
    lin = torch.nn.Linear((h // 2) * (w // 2) * c, classes)
    with torch.no_grad():
        bn.weight.copy_(torch.rand(c) + 0.5)
        bn.bias.copy_(torch.rand(c) - 0.5)

    def forward(x):
        y = torch.nn.functional.max_pool2d(torch.relu(bn(conv(x))), 2, ceil_mode=True)
        return lin(y.permute(0, 2, 3, 1).flatten(1))

    x = torch.randn(batch, c_in, h, w)
    labels = torch.randint(0, classes, (batch,))
    # skiplab's weight row (ky * 3 + kx) * c_in + ci is PyTorch's [f, ci, ky, kx].
    conv_w = conv.weight.detach().permute(2, 3, 1, 0).reshape(9 * c_in, c)
    params = {
        "conv": conv_w,
        "gamma": bn.weight.detach().clone(),
        "beta": bn.bias.detach().clone(),
        "out": lin.weight.detach().t().contiguous(),
        "out.b": lin.bias.detach().clone(),
    }
    bn.train()
    logits = forward(x)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    loss.backward()
    grads = {
        "conv": conv.weight.grad.permute(2, 3, 1, 0).reshape(9 * c_in, c),
        "gamma": bn.weight.grad,
        "beta": bn.bias.grad,
        "out": lin.weight.grad.t(),
        "out.b": lin.bias.grad,
    }
    bn.eval()
    x2 = torch.randn(batch, c_in, h, w)
    with torch.no_grad():
        eval_logits = forward(x2)
    flat = lambda t: t.permute(0, 2, 3, 1).flatten().tolist()
    return {
        "shape": [c_in, c, h, w, classes, batch],
        "params": {k: v.flatten().tolist() for k, v in params.items()},
        "x": flat(x),
        "labels": labels.tolist(),
        "train_logits": logits.detach().flatten().tolist(),
        "loss": loss.item(),
        "grads": {k: v.flatten().tolist() for k, v in grads.items()},
        "running_mean": bn.running_mean.tolist(),
        "running_var": bn.running_var.tolist(),
        "x_eval": flat(x2),
        "eval_logits": eval_logits.flatten().tolist(),
    }


fixture = {
    "torch": torch.__version__,
    "shape": [IN, HIDDEN, OUT, BATCH],
    "batch": case("batch"),
    "layer": case("layer"),
    "cnn_batch": cnn_case(),
}
path = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/norm_pytorch.json"
path.write_text(json.dumps(fixture, indent=1) + "\n")
print(f"wrote {path}")
