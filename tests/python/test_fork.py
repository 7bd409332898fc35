"""Fork safety from Python (issue 10.1): an optimizer whose thread pool exists before
``fork()`` keeps working in the child, with the parent's bits.

The parent steps a buffer large enough that the library splits it over its worker threads
(>= 1 << 20 elements), so rayon's pool (the global one for threads=0, the handle's own for
threads=2) exists when ``multiprocessing`` forks; threads=1 (no pool at all) is the control
that shows the comparison itself works. The child takes one more step and sends
back a digest of its parameters and state; the parent takes the same step and must get the
same bytes. A child that hangs is killed after CHILD_TIMEOUT_S and the test fails (it never
waits forever).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))

import rmsprop  # noqa: E402

N = (1 << 20) + 7  # above the library's parallel split, and not a multiple of any lane width
# Generous: one step over 1M elements takes milliseconds; only a hang gets near this.
CHILD_TIMEOUT_S = 60


def _digest(opt: rmsprop.RMSProp, params: np.ndarray) -> bytes:
    h = hashlib.sha256(params.tobytes())
    h.update(opt.state.nu.tobytes())
    return h.digest()


def _child(opt, params, grads, conn) -> None:
    try:
        opt.step(params, grads)
        conn.send_bytes(_digest(opt, params))
    except BaseException as e:  # report, do not hang the parent
        conn.send_bytes(b"ERROR " + repr(e).encode())
    finally:
        conn.close()


@pytest.mark.skipif(sys.platform != "linux", reason="the fork start method is Linux's default")
@pytest.mark.parametrize("threads", [0, 1, 2])
def test_forked_child_steps_to_the_parents_bits(threads):
    rng = np.random.default_rng(10)
    params = rng.standard_normal(N).astype(np.float32)
    g1 = rng.standard_normal(N).astype(np.float32)
    g2 = rng.standard_normal(N).astype(np.float32)
    opt = rmsprop.RMSProp(0.01, momentum=0.9, params=params, threads=threads)
    opt.step(params, g1)  # the pool now exists (and has run work)

    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(opt, params, g2, send))
    proc.start()
    send.close()
    try:
        got = recv.recv_bytes() if recv.poll(CHILD_TIMEOUT_S) else None
        if got is not None:
            proc.join(CHILD_TIMEOUT_S)  # it has answered: only exiting is left
        if got is None or proc.is_alive():
            pytest.fail(
                f"the forked child did not finish its step within {CHILD_TIMEOUT_S} s "
                f"(threads={threads}): the library hangs after fork()"
            )
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
        recv.close()
    assert not got.startswith(b"ERROR"), got.decode(errors="replace")
    assert proc.exitcode == 0

    opt.step(params, g2)  # the parent's own second step, after the fork
    assert got == _digest(opt, params), "the child's parameters/state differ from the parent's"
