"""Writes tests/fixtures/resnet_pytorch.json: a tiny ResNet (He et al. 2015's CIFAR layout,
post-activation blocks) in PyTorch, for `tests/gradients.rs` to compare skiplab's residual
CNN against, so `cargo test` needs no Python.

The network: a 3x3 stem (2 -> 4 channels, batch norm, ReLU); stage 1, one block of two 3x3
convolutions at 4 channels with an identity shortcut; stage 2, one block whose first
convolution has stride 2 (4 -> 6 channels, 5x5 -> 3x3) with a shortcut that is either a
1x1 convolution with stride 2 and batch norm ("projection", option B) or the input's every
other pixel padded with zero channels after it ("pad", option A); global average pool; a
linear classifier. In skiplab: stages [[4, 4, 4], [6, 6]], downsample stride, head average,
norm batch, skips `res:blocks:2` (edges 1-3 and 3-5).

"pre" is the same network with full pre-activation blocks (He et al. 2016: batch norm, ReLU,
conv; the sum passes on unrectified; a final batch norm and ReLU before the pool) and the pad
shortcut: skiplab's `order: pre`, whose normalisations are named after the layer that reads
them (`conv3.pre[2]`, `out.pre[5]`).

For each case: the parameters, a batch, its logits in training mode, the gradients of the
mean cross-entropy, and the logits of a second batch in evaluation mode.

    python3 bench/resnet_fixture.py   # torch 2.x
"""

import json
import pathlib

import torch
import torch.nn.functional as F

torch.manual_seed(11)
torch.set_default_dtype(torch.float64)
C_IN, C1, C2, H, W, CLASSES, BATCH = 2, 4, 6, 5, 5, 3, 4


def conv(c_in, c_out, stride=1):
    return torch.nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


def bn(c):
    layer = torch.nn.BatchNorm2d(c)
    with torch.no_grad():
        layer.weight.copy_(torch.rand(c) + 0.5)
        layer.bias.copy_(torch.rand(c) - 0.5)
    return layer


def pre_case():
    convs = [conv(C_IN, C1), conv(C1, C1), conv(C1, C1), conv(C1, C2, 2), conv(C2, C2)]
    bns = [bn(C1), bn(C1), bn(C1), bn(C2), bn(C2)]  # before conv2..conv5, and the head
    lin = torch.nn.Linear(C2, CLASSES)
    modules = torch.nn.ModuleList(convs + bns + [lin])
    act = lambda b, x: F.relu(b(x))

    def forward(x):
        y1 = convs[0](x)
        y2 = convs[1](act(bns[0], y1))
        y3 = convs[2](act(bns[1], y2)) + y1
        y4 = convs[3](act(bns[2], y3))
        y5 = convs[4](act(bns[3], y4)) + F.pad(y3[:, :, ::2, ::2], (0, 0, 0, 0, 0, C2 - C1))
        return lin(act(bns[4], y5).mean(dim=(2, 3)))

    def conv_w(c):
        return c.permute(2, 3, 1, 0).reshape(-1, c.shape[0])

    readers = ["conv2.pre[1]", "conv3.pre[2]", "conv4.pre[3]", "conv5.pre[4]", "out.pre[5]"]

    def values(get):
        out = {}
        for n, c in enumerate(convs, start=1):
            out[f"conv{n}.w[{n - 1}]"] = conv_w(get(c.weight))
        for name, b in zip(readers, bns):
            out[f"{name}.gamma"] = get(b.weight)
            out[f"{name}.beta"] = get(b.bias)
        out["out.w[5]"] = get(lin.weight).t()
        out["out.b"] = get(lin.bias)
        return {k: v.detach().contiguous().flatten().tolist() for k, v in out.items()}

    return run(modules, forward, values)


def run(modules, forward, values):
    x = torch.randn(BATCH, C_IN, H, W)
    labels = torch.randint(0, CLASSES, (BATCH,))
    params = values(lambda t: t)
    modules.train()
    logits = forward(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    grads = values(lambda t: t.grad)
    modules.eval()
    x2 = torch.randn(BATCH, C_IN, H, W)
    with torch.no_grad():
        eval_logits = forward(x2)
    flat = lambda t: t.permute(0, 2, 3, 1).flatten().tolist()
    return {
        "params": params,
        "x": flat(x),
        "labels": labels.tolist(),
        "train_logits": logits.detach().flatten().tolist(),
        "loss": loss.item(),
        "grads": grads,
        "x_eval": flat(x2),
        "eval_logits": eval_logits.flatten().tolist(),
    }


def case(shortcut):
    convs = [conv(C_IN, C1), conv(C1, C1), conv(C1, C1), conv(C1, C2, 2), conv(C2, C2)]
    bns = [bn(C1), bn(C1), bn(C1), bn(C2), bn(C2)]
    proj = torch.nn.Conv2d(C1, C2, 1, stride=2, bias=False)
    proj_bn = bn(C2)
    lin = torch.nn.Linear(C2, CLASSES)
    modules = torch.nn.ModuleList(convs + bns + [proj, proj_bn, lin])

    def forward(x):
        a1 = F.relu(bns[0](convs[0](x)))
        a2 = F.relu(bns[1](convs[1](a1)))
        a3 = F.relu(bns[2](convs[2](a2)) + a1)
        a4 = F.relu(bns[3](convs[3](a3)))
        if shortcut == "projection":
            s = proj_bn(proj(a3))
        else:
            s = F.pad(a3[:, :, ::2, ::2], (0, 0, 0, 0, 0, C2 - C1))
        a5 = F.relu(bns[4](convs[4](a4)) + s)
        return lin(a5.mean(dim=(2, 3)))

    # skiplab's weight row (ky * 3 + kx) * c_in + ci is PyTorch's [f, ci, ky, kx].
    def conv_w(c):
        return c.permute(2, 3, 1, 0).reshape(-1, c.shape[0])

    def named(weights, norms, projection, linear_w, linear_b):
        out = {}
        groups = ["0", "1", "2", "3", "4"]
        for n, (w, g) in enumerate(zip(weights, groups), start=1):
            out[f"conv{n}.w[{g}]"] = conv_w(w)
        for n, (gamma, beta) in enumerate(norms, start=1):
            out[f"conv{n}.gamma"] = gamma
            out[f"conv{n}.beta"] = beta
        if shortcut == "projection":
            out["conv5.r3[3]"] = projection[0][:, :, 0, 0].t()
            out["conv5.r3.gamma"] = projection[1]
            out["conv5.r3.beta"] = projection[2]
        out["out.w[5]"] = linear_w.t()
        out["out.b"] = linear_b
        return {k: v.detach().contiguous().flatten().tolist() for k, v in out.items()}

    def values(get):
        return named(
            [get(c.weight) for c in convs],
            [(get(b.weight), get(b.bias)) for b in bns],
            (get(proj.weight), get(proj_bn.weight), get(proj_bn.bias)),
            get(lin.weight),
            get(lin.bias),
        )

    return run(modules, forward, values)


fixture = {
    "torch": torch.__version__,
    "shape": [C_IN, C1, C2, H, W, CLASSES, BATCH],
    "projection": case("projection"),
    "pad": case("pad"),
    "pre": pre_case(),
}
path = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/resnet_pytorch.json"
path.write_text(json.dumps(fixture) + "\n")
print(f"wrote {path}")
