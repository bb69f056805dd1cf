#!/usr/bin/env python3
"""PyTorch twin of skiplab's benchmark models, for `skiplab bench` to time side by side.

Same layer sizes, batch sizes, optimiser (SGD, lr 0.01, momentum 0.9), loss (cross-entropy)
and synthetic data as skiplab's harness. Prints one JSON line:
{"samples_per_sec": ..., "peak_rss_mib": ...}. With --eval, forward passes in evaluation mode
under torch.inference_mode() instead of training steps.

Skip edges concatenate their sources (MLP: onto the layer's input; CNN: a max-pooled copy
onto the target's output channels), as in the paper.
"""
import argparse
import json
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class SkipMLP(nn.Module):
    def __init__(self, widths, skips):
        super().__init__()
        self.widths = widths
        self.sources = {j: [j - 1] + sorted(i for (i, t) in skips if t == j) for j in range(1, len(widths))}
        self.layers = nn.ModuleList(
            nn.Linear(sum(widths[i] for i in self.sources[j]), widths[j]) for j in range(1, len(widths))
        )

    def forward(self, x):
        acts = [x]
        last = len(self.widths) - 1
        for j in range(1, len(self.widths)):
            inp = torch.cat([acts[i] for i in self.sources[j]], dim=1) if len(self.sources[j]) > 1 else acts[j - 1]
            z = self.layers[j - 1](inp)
            acts.append(z if j == last else F.relu(z))
        return acts[-1]


class SkipCNN(nn.Module):
    """Convs numbered as in the paper (pools count): stages [[a, b], [c, d], [e, f]]."""

    def __init__(self, channels, stages, classes, skips, size, bn=False):
        super().__init__()
        self.bn = bn
        self.plan = []  # (number, "conv"/"pool")
        number = 0
        for stage in stages:
            for filters in stage:
                number += 1
                self.plan.append((number, "conv", filters))
            number += 1
            self.plan.append((number, "pool", None))
        self.skips = skips
        out_channels = {0: channels}
        convs = {}
        for n, kind, filters in self.plan:
            if kind == "conv":
                conv = nn.Conv2d(out_channels[n - 1], filters, 3, padding=1, bias=not bn)
                # Batch norm's shift takes the place of the bias, as in skiplab.
                convs[str(n)] = nn.Sequential(conv, nn.BatchNorm2d(filters)) if bn else conv
                out_channels[n] = filters + sum(out_channels[i] for (i, t) in skips if t == n)
            else:
                out_channels[n] = out_channels[n - 1]
        self.convs = nn.ModuleDict(convs)
        final = size // (2 ** len(stages))
        self.fc = nn.Linear(out_channels[number] * final * final, classes)

    def forward(self, x):
        outs = {0: x}
        for n, kind, _ in self.plan:
            prev = outs[n - 1]
            if kind == "pool":
                outs[n] = F.max_pool2d(prev, 2)
                continue
            y = F.relu(self.convs[str(n)](prev))
            parts = [y]
            for (i, t) in self.skips:
                if t == n:
                    s = outs[i]
                    while s.shape[-1] > y.shape[-1]:
                        s = F.max_pool2d(s, 2)
                    parts.append(s)
            outs[n] = torch.cat(parts, dim=1) if len(parts) > 1 else y
        return self.fc(outs[self.plan[-1][0]].flatten(1))


class ResNet(nn.Module):
    """He et al.'s CIFAR ResNet (post-activation basic blocks, option-A shortcuts: every
    other pixel, zero channels after), or the same network without its shortcuts (plain):
    skiplab's `resnet20` / `plain20` presets. Convolutions without bias, batch norm after
    each, global average pool, a linear classifier."""

    def __init__(self, n, residual, classes=10):
        super().__init__()
        self.residual = residual
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))
        blocks = []
        c_in = 16
        for stage, c in enumerate([16, 32, 64]):
            for b in range(n):
                stride = 2 if stage > 0 and b == 0 else 1
                blocks.append(
                    nn.ModuleList(
                        [
                            nn.Conv2d(c_in, c, 3, stride=stride, padding=1, bias=False),
                            nn.BatchNorm2d(c),
                            nn.Conv2d(c, c, 3, padding=1, bias=False),
                            nn.BatchNorm2d(c),
                        ]
                    )
                )
                c_in = c
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = F.relu(self.stem(x))
        for conv1, bn1, conv2, bn2 in self.blocks:
            y = F.relu(bn1(conv1(x)))
            y = bn2(conv2(y))
            if self.residual:
                s = x
                if s.shape[-1] != y.shape[-1]:
                    s = s[:, :, ::2, ::2]
                if s.shape[1] != y.shape[1]:
                    s = F.pad(s, (0, 0, 0, 0, 0, y.shape[1] - s.shape[1]))
                y = y + s
            x = F.relu(y)
        return self.fc(x.mean(dim=(2, 3)))


def all_skips(n_layers):
    return [(i, j) for i in range(n_layers) for j in range(i + 2, n_layers)]


def build(model):
    paper_skips = [(1, 4), (2, 5), (4, 7), (5, 8)]
    if model == "mlp-paper":
        return SkipMLP([784, 128, 256, 256, 26], all_skips(5)), (784,), 26
    if model == "mlp-cifar":
        return SkipMLP([3072, 512, 256, 256, 10], all_skips(5)), (3072,), 10
    if model == "cnn-vanilla":
        return SkipCNN(3, [[32, 32], [64, 64], [128, 128]], 10, [], 32), (3, 32, 32), 10
    if model == "cnn-skip":
        return SkipCNN(3, [[32, 32], [64, 64], [128, 128]], 10, paper_skips, 32), (3, 32, 32), 10
    if model == "cnn-vanilla-bn":
        return SkipCNN(3, [[32, 32], [64, 64], [128, 128]], 10, [], 32, bn=True), (3, 32, 32), 10
    if model == "cnn-reinforced":
        return SkipCNN(3, [[32, 32], [96, 96], [224, 224]], 10, [], 32), (3, 32, 32), 10
    if model in ("resnet20", "plain20"):
        return ResNet(3, model == "resnet20"), (3, 32, 32), 10
    raise SystemExit(f"unknown model {model}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--device", default="cpu")
    # PyTorch's best eager CPU setting for convolutions: NHWC activations and weights.
    p.add_argument("--channels-last", action="store_true")
    # Forward only: evaluation mode under torch.inference_mode(), logits, loss and accuracy of
    # each batch, as skiplab's evaluator computes them.
    p.add_argument("--eval", action="store_true")
    a = p.parse_args()
    torch.manual_seed(1)
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    net, shape, classes = build(a.model)
    fmt = torch.channels_last if a.channels_last and len(shape) == 3 else torch.contiguous_format
    net = net.to(dev, memory_format=fmt)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    batches = [
        (
            torch.rand(a.batch, *shape, device=dev).contiguous(memory_format=fmt),
            torch.randint(0, classes, (a.batch,), device=dev),
        )
        for _ in range(4 if a.eval else 50)
    ]
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    if a.eval:
        net.eval()
        with torch.inference_mode():
            warmup = 2
            for step in range(warmup + a.steps):
                if step == warmup:
                    sync()
                    start = time.perf_counter()
                x, y = batches[step % len(batches)]
                logits = net(x)
                loss = F.cross_entropy(logits, y).item()
                hits = (logits.argmax(dim=1) == y).sum().item()
        sync()
        sps = a.steps * a.batch / (time.perf_counter() - start)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"samples_per_sec": sps, "peak_rss_mib": peak, "loss": loss, "hits": hits}))
        return
    warmup = min(10, a.steps)
    start = time.perf_counter()
    for step in range(a.steps):
        if step == warmup:
            sync()
            start = time.perf_counter()
        x, y = batches[step % len(batches)]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
    sync()
    timed = max(a.steps - warmup, 1)
    sps = timed * a.batch / (time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"samples_per_sec": sps, "peak_rss_mib": peak}))


if __name__ == "__main__":
    main()
