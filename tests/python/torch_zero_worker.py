"""Helper of test_torch_zero.py (not a test module): trains a small model with
``ZeroRedundancyOptimizer(optimizer_class=rmsprop.torch.RMSprop)`` on the gloo backend in 2
processes (torch.multiprocessing.spawn), then the same model with ``rmsprop.torch.RMSprop``
alone in this process, and saves what the test compares into OUTDIR.

Usage: python torch_zero_worker.py OUTDIR SEMANTICS PORT
"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.distributed.optim import ZeroRedundancyOptimizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))

from rmsprop.torch import RMSprop  # noqa: E402

STEPS = 5
KWARGS = {"lr": 1e-2, "alpha": 0.9, "momentum": 0.9, "centered": True, "threads": 1}


def make_model() -> torch.nn.Module:
    # Parameters of several sizes, so that ZeRO's partition gives each rank a share.
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 32), torch.nn.Tanh(), torch.nn.Linear(32, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)
    )


def train(model: torch.nn.Module, opt) -> None:
    # Every rank sees the same data (no DDP here): the gradients are then the same on every
    # rank, and ZeRO's sharded step must give what one optimizer over all parameters gives.
    g = torch.Generator().manual_seed(1)
    for _ in range(STEPS):
        x, y = torch.randn(24, 6, generator=g), torch.randn(24, 3, generator=g)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def worker(rank: int, world: int, outdir: str, semantics: str, port: int) -> None:
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = make_model()
        opt = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=RMSprop, semantics=semantics, **KWARGS)
        assert isinstance(opt.optim, RMSprop)
        owned = sum(len(g["params"]) for g in opt.optim.param_groups)
        train(model, opt)
        opt.consolidate_state_dict(to=0)
        if rank == 0:
            torch.save(opt.state_dict(), os.path.join(outdir, "zero_state.pt"))
        torch.save(
            {"params": [p.detach().clone() for p in model.parameters()], "owned": owned},
            os.path.join(outdir, f"rank{rank}.pt"),
        )
    finally:
        dist.destroy_process_group()


def main() -> None:
    outdir, semantics, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    mp.spawn(worker, args=(2, outdir, semantics, port), nprocs=2, join=True)
    torch.set_num_threads(1)
    model = make_model()
    opt = RMSprop(model.parameters(), semantics=semantics, **KWARGS)
    train(model, opt)
    torch.save(
        {"params": [p.detach().clone() for p in model.parameters()], "state": opt.state_dict()},
        os.path.join(outdir, "single.pt"),
    )


if __name__ == "__main__":
    main()
