"""``torch.distributed.optim.ZeroRedundancyOptimizer`` with ``optimizer_class=
rmsprop.torch.RMSprop`` on the gloo backend across 2 processes (torch's own distributed engine;
the worker is tests/python/torch_zero_worker.py): both ranks end with the same parameters,
bit for bit equal to one process stepping all of them, since sharding only splits which
elements a rank steps and the library's kernel is elementwise.

torch is required (tests/run_all.sh installs it); RMSPROP_SKIP_TORCH=1 skips, saying so.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

if os.environ.get("RMSPROP_SKIP_TORCH") == "1":
    pytest.skip("RMSPROP_SKIP_TORCH=1: the rmsprop.torch tests are NOT run", allow_module_level=True)

try:
    import torch
    import torch.distributed as dist
except ImportError as e:  # never a silent skip: CI must run these
    raise ImportError(
        "the rmsprop.torch tests need torch (pip install torch; tests/run_all.sh installs it), "
        "or RMSPROP_SKIP_TORCH=1 to skip them explicitly"
    ) from e

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "python"))

from rmsprop.torch import has_pytorch_semantics  # noqa: E402


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "semantics",
    [
        "optax",
        pytest.param(
            "pytorch",
            marks=pytest.mark.skipif(
                not has_pytorch_semantics(),
                reason="semantics='pytorch' needs the library's PyTorch flavor (rmsprop_options_set_flavor), "
                "which the loaded library lacks",
            ),
        ),
    ],
)
def test_zero_redundancy_optimizer_on_gloo_equals_one_process(tmp_path, semantics):
    assert dist.is_available() and dist.is_gloo_available(), "this torch has no gloo backend"
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, "torch_zero_worker.py"), str(tmp_path), semantics, str(_free_port())],
        capture_output=True,
        text=True,
        timeout=600,  # a hang (a rank waiting for the other) fails instead of blocking CI
    )
    assert out.returncode == 0, f"worker failed:\n{out.stdout}\n{out.stderr}"
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    single = torch.load(tmp_path / "single.pt")
    n = len(single["params"])
    # ZeRO sharded: each rank's RMSprop stepped a strict, non-empty part of the parameters.
    assert 0 < ranks[0]["owned"] < n and ranks[0]["owned"] + ranks[1]["owned"] == n
    for i in range(n):
        assert torch.equal(ranks[0]["params"][i], ranks[1]["params"][i]), f"ranks differ at param {i}"
        assert torch.equal(ranks[0]["params"][i], single["params"][i]), f"ZeRO != one process at param {i}"
    # The consolidated state (torch's layout, gathered from both ranks) is one process's state.
    zero_state = torch.load(tmp_path / "zero_state.pt")["state"]
    assert sorted(zero_state) == sorted(single["state"]["state"]) == list(range(n))
    for i in range(n):
        for k, v in single["state"]["state"][i].items():
            assert torch.equal(zero_state[i][k], v), f"state {i} {k}"
