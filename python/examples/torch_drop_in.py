"""rmsprop.torch.RMSprop as a drop-in for torch.optim.RMSprop, against torch itself.

Trains the same small model twice, once with torch.optim.RMSprop throughout, once switching
optimizers mid-run: torch.optim.RMSprop -> (state_dict saved to a file and loaded)
rmsprop.torch.RMSprop -> torch.optim.RMSprop, with a learning-rate scheduler carried along,
and prints how far apart the two runs end (in ulps of each tensor's scale).

    python3 python/examples/torch_drop_in.py            # PyTorch semantics (the default)
    python3 python/examples/torch_drop_in.py optax      # optax semantics: same maths, optax's rounding

With PyTorch semantics the difference is within the bound the library states for its PyTorch
flavor. With optax semantics it is large here on purpose: this run has momentum and a
changing learning rate, where optax's maths differ from torch's (optax scales by lr before
its trace, torch after; see the README's framework table).
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np
import torch

from rmsprop.torch import RMSprop

SEMANTICS = sys.argv[1] if len(sys.argv) > 1 else "pytorch"
KW = dict(lr=1e-2, alpha=0.9, momentum=0.5, centered=True, weight_decay=1e-3)


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))


g = torch.Generator().manual_seed(1)
data = [(torch.randn(64, 8, generator=g), torch.randn(64, 1, generator=g)) for _ in range(30)]


def run(net, opt, sched, batches):
    for x, y in batches:
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()
        sched.step()


def scheduler(opt):
    return torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.7)


# torch alone
ref_net = model()
ref = torch.optim.RMSprop(ref_net.parameters(), **KW)
run(ref_net, ref, scheduler(ref), data)

# torch -> rmsprop.torch -> torch, through checkpoint files
net = model()
opt = torch.optim.RMSprop(net.parameters(), **KW)
sched = scheduler(opt)
run(net, opt, sched, data[:10])
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "opt.pt")
    torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, path)
    ckpt = torch.load(path)
    opt = RMSprop(net.parameters(), semantics=SEMANTICS, **KW)
    opt.load_state_dict(ckpt["opt"])
    sched = scheduler(opt)
    sched.load_state_dict(ckpt["sched"])
    run(net, opt, sched, data[10:20])
    torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, path)
    ckpt = torch.load(path)
    opt = torch.optim.RMSprop(net.parameters(), **KW)
    opt.load_state_dict(ckpt["opt"])
    sched = scheduler(opt)
    sched.load_state_dict(ckpt["sched"])
    run(net, opt, sched, data[20:])

worst = 0.0
for p, q in zip(net.parameters(), ref_net.parameters()):
    scale = float(q.detach().abs().max())
    ulps = float((p - q).detach().abs().max()) / float(np.spacing(np.float32(scale)))
    worst = max(worst, ulps)
print(f"semantics={SEMANTICS}: after 30 steps (10 of them by rmsprop.torch.RMSprop), "
      f"max |difference| = {worst:.1f} ulps of the tensor's scale; lr now {opt.param_groups[0]['lr']:.6g}")
