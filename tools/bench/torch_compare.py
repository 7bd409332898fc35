#!/usr/bin/env python3
"""rmsprop.torch.RMSprop against torch.optim.RMSprop on CPU, from Python, in one run.

Prints a markdown table: the time of one ``optimizer.step()`` (median) for

  rmsprop    rmsprop.torch.RMSprop (semantics "pytorch" when the loaded library has the
             PyTorch flavor, else "optax"; the table says which), threads=n
  torch      torch.optim.RMSprop, default implementation (on CPU: the per-tensor for-loop)
  torch-fe   torch.optim.RMSprop(foreach=True)

over float32 parameters laid out as one tensor of 1e5 and 1e7 elements, and as 1000 tensors
of 1e5 and 1e7 elements in total, with 1 and 2 threads (torch.set_num_threads(n) for torch,
threads=n for rmsprop), for the default configuration and for centered + momentum.
Gradients are fixed tensors assigned once (no backward pass is timed).

Method: the implementations run alternately, sample by sample (interleaved rounds), so
that load from elsewhere on a shared machine hits them alike; a sample times a batch of
steps long enough (>= ~20 ms) to dwarf the clock; each cell is the median over --rounds of
the per-round medians of --samples samples. "x torch" is torch's time over rmsprop's.

Usage (from a checkout after `cargo build --release`, or with the package installed):
  python3 tools/bench/torch_compare.py [--rounds 5] [--samples 5] [--configs default,cm]
                                       [--threads 1,2] [--machine "text for the heading"]
Needs torch and numpy.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "python"))

import rmsprop  # noqa: E402
from rmsprop.torch import RMSprop, has_pytorch_semantics  # noqa: E402

LAYOUTS = [
    ("1 tensor", 10**5, 1),
    ("1 tensor", 10**7, 1),
    ("1000 tensors", 10**5, 1000),
    ("1000 tensors", 10**7, 1000),
]
CONFIGS = {"default": {}, "cm": {"centered": True, "momentum": 0.9}}


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs"


def make_params(total: int, count: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    sizes = [total // count] * count
    params = [torch.nn.Parameter(torch.randn(n, generator=g)) for n in sizes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g) * 0.1
    return params


def sample(opt, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        opt.step()
    return (time.perf_counter() - t0) / calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--configs", default="default,cm")
    ap.add_argument("--machine", default=None, help="how to name the machine in the heading")
    args = ap.parse_args()
    semantics = "pytorch" if has_pytorch_semantics() else "optax"
    threads = [int(t) for t in args.threads.split(",")]
    configs = args.configs.split(",")

    rows = []
    for cfg_name in configs:
        cfg = CONFIGS[cfg_name]
        for nthreads in threads:
            torch.set_num_threads(nthreads)
            for label, total, count in LAYOUTS:
                opts = {
                    "rmsprop": RMSprop(make_params(total, count, 0), lr=1e-4, semantics=semantics, threads=nthreads, **cfg),
                    "torch": torch.optim.RMSprop(make_params(total, count, 0), lr=1e-4, foreach=False, **cfg),
                    "torch-fe": torch.optim.RMSprop(make_params(total, count, 0), lr=1e-4, foreach=True, **cfg),
                }
                calls = {}
                for name, opt in opts.items():  # warm up (state creation) and size the batches
                    opt.step()
                    t = sample(opt, 1)
                    calls[name] = max(1, int(0.02 / max(t, 1e-7)))
                per_round = {name: [] for name in opts}
                for _ in range(args.rounds):
                    samples = {name: [] for name in opts}
                    for _ in range(args.samples):
                        for name, opt in opts.items():
                            samples[name].append(sample(opt, calls[name]))
                    for name in opts:
                        per_round[name].append(statistics.median(samples[name]))
                med = {name: statistics.median(v) for name, v in per_round.items()}
                rows.append((cfg_name, nthreads, label, total, med))
                print(f"# {cfg_name} threads={nthreads} {label} {total:.0e}: "
                      + ", ".join(f"{k} {v * 1e6:.1f} us" for k, v in med.items()), file=sys.stderr, flush=True)
                del opts

    print(
        f"rmsprop.torch.RMSprop (semantics={semantics!r}) vs torch.optim.RMSprop {torch.__version__}, "
        f"float32, CPU: {args.machine or machine()}; rmsprop {rmsprop.library_version()}, "
        f"Python {platform.python_version()}; `python3 tools/bench/torch_compare.py --rounds {args.rounds} "
        f"--samples {args.samples}`, {time.strftime('%Y-%m-%d', time.gmtime())}. Time of one step() "
        "(median of per-round medians, interleaved rounds); x = torch's time / rmsprop's.\n"
    )
    print("| config | threads | layout | elements | rmsprop | torch | torch foreach | x torch | x foreach |")
    print("|---|---|---|---|---|---|---|---|---|")
    for cfg_name, nthreads, label, total, med in rows:
        r, t, f = med["rmsprop"], med["torch"], med["torch-fe"]
        cfg_label = "default" if cfg_name == "default" else "centered+momentum"
        print(
            f"| {cfg_label} | {nthreads} | {label} | {total:.0e} | {fmt(r)} | {fmt(t)} | {fmt(f)} | "
            f"{t / r:.1f} | {f / r:.1f} |"
        )


def fmt(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} us"


if __name__ == "__main__":
    main()
