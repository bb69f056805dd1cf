#!/usr/bin/env python3
"""A/B two skiplab builds on one model, both running at the same time.

A shared VM's speed drifts (this project has seen 1.8x within an hour), so two builds timed
one after the other can differ by more than the change being measured. Here the reference
and the candidate train at the same moment, one rayon thread each, pinned to different
cores, and then again with the cores swapped: whatever the host does to the machine, it does
to both. Each pair gives one ratio (candidate / reference); the median of the ratios is the
result. Running the reference against itself shows how far the ratios scatter on the day.

    bench/ab_pinned.py --model cnn-vanilla --rounds 3 OLD_BINARY NEW_BINARY
    bench/ab_pinned.py --model cnn-skip OLD NEW --env SKIPLAB_CPU_CONV=im2col
    bench/ab_pinned.py --model mlp-paper --eval --steps 200 OLD NEW

Needs Linux, `taskset` and two cores. Each run is `BINARY bench --single MODEL` (the bench
command's hidden one-model mode, which prints one JSON line).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def start(binary, model, steps, core, env, evaluate):
    environment = dict(os.environ, RAYON_NUM_THREADS="1", **env)
    command = ["taskset", "-c", str(core), binary, "bench", "--single", model,
               "--steps", str(steps), "--cnn-steps", str(steps)] + (["--eval", "--batch", "1000"] if evaluate else [])
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=environment)


def rate(process, binary):
    out, _ = process.communicate()
    lines = out.strip().splitlines()
    if process.returncode != 0 or not lines:
        sys.exit(f"{binary} failed (exit {process.returncode})")
    return json.loads(lines[-1])["samples_per_sec"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("reference")
    parser.add_argument("candidate")
    parser.add_argument("--model", default="cnn-vanilla",
                        help="mlp-paper, mlp-cifar, cnn-vanilla, cnn-skip or cnn-reinforced")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of runs, cores swapped")
    parser.add_argument("--steps", type=int, default=50,
                        help="training steps per run (with --eval: evaluation calls)")
    parser.add_argument("--eval", action="store_true",
                        help="time forward-only evaluation of 1,000 examples a call instead")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="set for the candidate only")
    args = parser.parse_args()
    env = dict(kv.split("=", 1) for kv in args.env)
    ratios, reference, candidate = [], [], []
    for _ in range(args.rounds):
        for cores in ((0, 1), (1, 0)):
            a = start(args.reference, args.model, args.steps, cores[0], {}, args.eval)
            b = start(args.candidate, args.model, args.steps, cores[1], env, args.eval)
            ra, rb = rate(a, args.reference), rate(b, args.candidate)
            reference.append(ra)
            candidate.append(rb)
            ratios.append(rb / ra)
    print(f"{args.model}: candidate {statistics.median(candidate):.0f}/s, "
          f"reference {statistics.median(reference):.0f}/s (one thread each), "
          f"ratio median {statistics.median(ratios):.3f} "
          f"[{' '.join(f'{r:.2f}' for r in ratios)}]")


if __name__ == "__main__":
    main()
