"""fork() safety from Python: multiprocessing with the fork start method.

Usage: python3 fork_check.py /path/to/librmsprop.so

The parent creates one optimizer on rayon's global pool (threads 0) and one with its own
pool (threads 2), warms both with a parallel-sized step so that their pools exist, then
forks workers through `multiprocessing.get_context("fork").Pool`. Each worker takes one more
step on an inherited handle and returns a hash of the result; the parent takes the same step
on its own copies and compares. Workers that do not answer within the time limit are a hang:
the check fails (the pool is terminated). Only ctypes and the standard library are used.
Prints one line per check; exits 0 only if all pass.
"""
import array
import ctypes
import hashlib
import multiprocessing
import sys

N = 1 << 20  # above the library's parallel threshold of 64 Ki elements
LIMIT_S = 60

lib = ctypes.CDLL(sys.argv[1])
vp = ctypes.c_void_p
lib.rmsprop_options_new.argtypes = [ctypes.c_double, ctypes.POINTER(vp)]
lib.rmsprop_options_set_centered.argtypes = [vp, ctypes.c_bool]
lib.rmsprop_options_free.argtypes = [vp]
lib.rmsprop_create.argtypes = [vp, ctypes.POINTER(ctypes.c_size_t), ctypes.c_size_t,
                               ctypes.c_int32, ctypes.POINTER(vp)]
lib.rmsprop_set_threads.argtypes = [vp, ctypes.c_size_t]
lib.rmsprop_step_f32.argtypes = [vp, ctypes.POINTER(ctypes.c_float),
                                 ctypes.POINTER(ctypes.c_float), ctypes.c_size_t]
lib.rmsprop_destroy.argtypes = [vp]
DTYPE_F32 = 1

grads = array.array("f", (((i * 2654435761) % 4099) / 1024.0 - 2.0 for i in range(N)))
params = array.array("f", ((i % 97) * 0.01 - 0.5 for i in range(N)))
handles = []


def make(threads, centered):
    o, h, n = vp(), vp(), ctypes.c_size_t(N)
    assert lib.rmsprop_options_new(0.01, ctypes.byref(o)) == 0
    lib.rmsprop_options_set_centered(o, centered)
    assert lib.rmsprop_create(o, ctypes.byref(n), 1, DTYPE_F32, ctypes.byref(h)) == 0
    lib.rmsprop_options_free(o)
    assert lib.rmsprop_set_threads(h, threads) == 0
    return h


def step_hash(i):
    """One step of handle i from `params`; the SHA-256 of the result."""
    work = array.array("f", params)
    p = (ctypes.c_float * N).from_buffer(work)
    g = (ctypes.c_float * N).from_buffer(grads)
    if lib.rmsprop_step_f32(handles[i], p, g, N) != 0:
        return "error"
    return hashlib.sha256(work.tobytes()).hexdigest()


def main():
    handles.append(make(0, True))
    handles.append(make(2, False))
    for i in range(2):
        step_hash(i)  # warm-up: both pools now exist
    failures = 0
    ctx = multiprocessing.get_context("fork")
    pool = ctx.Pool(2)
    try:
        pending = pool.map_async(step_hash, [0, 1], chunksize=1)
        try:
            got = pending.get(timeout=LIMIT_S)
        except multiprocessing.TimeoutError:
            got = None
    finally:
        pool.terminate()
        pool.join()
    want = [step_hash(0), step_hash(1)]
    checks = [
        (got is not None, f"workers answered within {LIMIT_S} s"),
        (want[0] != want[1], "the two handles compute different results"),
        (got is not None and got[0] == want[0], "worker, threads 0: same bits as the parent"),
        (got is not None and got[1] == want[1], "worker, threads 2: same bits as the parent"),
    ]
    for ok, what in checks:
        print(("ok   " if ok else "FAIL ") + what, flush=True)
        failures += not ok
    for h in handles:
        lib.rmsprop_destroy(h)
    print("FAILED" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
