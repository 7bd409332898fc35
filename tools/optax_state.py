#!/usr/bin/env python3
"""Convert between an optax.rmsprop state and an rmsprop checkpoint (format v1).

The checkpoint format is specified in docs/checkpoint-format.md; this file is an
independent implementation of it in Python (struct + zlib.crc32), needing only numpy.
jax/optax are needed only by `leaves_from_optax` (reads a live optax state) and
`optax_state_from_leaves` / `make_optax` (build them), and are imported lazily.

The optax side is a plain numpy archive plus a JSON configuration:

  state.npz   (np.savez of the flattened leaves; tensor i of the params pytree, in
               jax.tree_util leaf order, flattened in C order)
      nu_<i>, mu_<i> (centered only), trace_<i> (momentum only)   float32 / float64
      schedule_count        int32 scalar, optax ScaleByScheduleState.count
                            (present only when the learning rate is a schedule)
      bias_correction_count int32 scalar, optax Scale*WithCountState.count
                            (present only with bias_correction=True)
      skipped               uint64 scalar, optional (steps skipped for non-finite grads)
  config.json  every optax.rmsprop argument:
      {"learning_rate": 0.01 | <schedule>, "decay": 0.9, "eps": 1e-08,
       "initial_scale": 0.0, "eps_in_sqrt": true, "centered": false,
       "momentum": null | 0.9, "nesterov": false, "bias_correction": false,
       "skip_non_finite": false}
      <schedule> is {"kind": K, ...optax's argument names...} with K one of
      constant (value), linear (init_value, end_value, transition_steps,
      transition_begin), polynomial (+ power), exponential_decay (init_value,
      transition_steps, decay_rate, transition_begin, staircase, end_value|null),
      cosine_decay (init_value, decay_steps, alpha, exponent), warmup_cosine_decay
      (init_value, peak_value, warmup_steps, decay_steps, end_value, exponent),
      warmup_exponential_decay (init_value, peak_value, warmup_steps, transition_steps,
      decay_rate, transition_begin, staircase, end_value|null), piecewise_constant
      (init_value, boundaries_and_scales: [[boundary, scale], ...]), join (schedules,
      boundaries).

Counts: the library keeps both counts and advances both every step; optax keeps each only
where it uses it. Going to a checkpoint, a count optax does not keep is taken from the
other one (they are equal in a run that started at 0), or 0 when optax keeps neither (it
then influences nothing). Going back, both are written to the npz; optax uses those it has.

Usage:
  optax_state.py to-checkpoint STATE.npz CONFIG.json OUT.ckpt
  optax_state.py from-checkpoint IN.ckpt STATE.npz CONFIG.json
  optax_state.py show IN.ckpt
"""

import json
import math
import struct
import sys
import zlib

import numpy as np

MAGIC = b"RMSPCKPT"
VERSION = 1
HEADER = struct.Struct("<8sIIQ")  # magic, version, reserved, body length
SECTION = struct.Struct("<4sQ")  # tag, length
MAX_SCHEDULE_DEPTH = 64

FLAG_EPS_IN_SQRT, FLAG_CENTERED, FLAG_NESTEROV = 1, 2, 4
FLAG_BIAS_CORRECTION, FLAG_SKIP_NON_FINITE = 8, 16
HAS_NU, HAS_MU, HAS_TRACE = 1, 2, 4
DTYPES = {1: np.dtype("<f4"), 2: np.dtype("<f8")}
DTYPE_TAGS = {"float32": 1, "float64": 2}

# Schedule tag -> (kind, fields); field types: d f64, q i64, b bool, o optional f64.
SCHEDULES = {
    1: ("constant", [("value", "d")]),
    2: ("linear", [("init_value", "d"), ("end_value", "d"),
                   ("transition_steps", "q"), ("transition_begin", "q")]),
    3: ("polynomial", [("init_value", "d"), ("end_value", "d"), ("power", "d"),
                       ("transition_steps", "q"), ("transition_begin", "q")]),
    4: ("exponential_decay", [("init_value", "d"), ("transition_steps", "q"),
                              ("decay_rate", "d"), ("transition_begin", "q"),
                              ("staircase", "b"), ("end_value", "o")]),
    5: ("cosine_decay", [("init_value", "d"), ("decay_steps", "q"), ("alpha", "d"),
                         ("exponent", "d")]),
    6: ("warmup_cosine_decay", [("init_value", "d"), ("peak_value", "d"),
                                ("warmup_steps", "q"), ("decay_steps", "q"),
                                ("end_value", "d"), ("exponent", "d")]),
    7: ("warmup_exponential_decay", [("init_value", "d"), ("peak_value", "d"),
                                     ("warmup_steps", "q"), ("transition_steps", "q"),
                                     ("decay_rate", "d"), ("transition_begin", "q"),
                                     ("staircase", "b"), ("end_value", "o")]),
    8: ("piecewise_constant", None),
    9: ("join", None),
}
SCHEDULE_TAGS = {kind: tag for tag, (kind, _) in SCHEDULES.items()}
# Defaults of optax's optional schedule arguments.
SCHEDULE_DEFAULTS = {
    "transition_begin": 0, "staircase": False, "end_value": None, "alpha": 0.0,
    "exponent": 1.0,
}


class CheckpointError(ValueError):
    """A checkpoint that is corrupt, of a newer version, or inconsistent."""


# ----------------------------------------------------------------------------------------
# Encoding.

def _enc_schedule(s, out):
    kind = s["kind"]
    if kind not in SCHEDULE_TAGS:
        raise ValueError(f"unknown schedule kind {kind!r}")
    tag = SCHEDULE_TAGS[kind]
    out += struct.pack("<B", tag)
    if kind == "piecewise_constant":
        pairs = sorted((int(b), float(v)) for b, v in s.get("boundaries_and_scales", []))
        out += struct.pack("<dQ", float(s["init_value"]), len(pairs))
        for b, v in pairs:
            out += struct.pack("<qd", b, v)
    elif kind == "join":
        out += struct.pack("<Q", len(s["schedules"]))
        for sub in s["schedules"]:
            _enc_schedule(sub, out)
        out += struct.pack("<Q", len(s["boundaries"]))
        for b in s["boundaries"]:
            out += struct.pack("<q", int(b))
    else:
        for name, t in SCHEDULES[tag][1]:
            v = s[name] if name in s else SCHEDULE_DEFAULTS[name]
            if t == "d":
                out += struct.pack("<d", float(v))
            elif t == "q":
                out += struct.pack("<q", int(v))
            elif t == "b":
                out += struct.pack("<B", bool(v))
            else:
                out += struct.pack("<Bd", v is not None, 0.0 if v is None else float(v))


def _conf_bytes(cfg):
    out = bytearray()
    out += struct.pack("<ddd", float(cfg.get("decay", 0.9)), float(cfg.get("eps", 1e-8)),
                       float(cfg.get("initial_scale", 0.0)))
    flags = ((FLAG_EPS_IN_SQRT if cfg.get("eps_in_sqrt", True) else 0)
             | (FLAG_CENTERED if cfg.get("centered", False) else 0)
             | (FLAG_NESTEROV if cfg.get("nesterov", False) else 0)
             | (FLAG_BIAS_CORRECTION if cfg.get("bias_correction", False) else 0)
             | (FLAG_SKIP_NON_FINITE if cfg.get("skip_non_finite", False) else 0))
    m = cfg.get("momentum")
    out += struct.pack("<BBd", flags, m is not None, 0.0 if m is None else float(m))
    lr = cfg["learning_rate"]
    if isinstance(lr, dict):
        out += struct.pack("<B", 1)
        _enc_schedule(lr, out)
    else:
        out += struct.pack("<Bd", 0, float(lr))
    return bytes(out)


def encode(ckpt):
    """Checkpoint bytes from a dict: config (as config.json), sizes (list of int),
    nu / mu / trace (flat float32 or float64 arrays; mu and trace may be None),
    schedule_count, bias_correction_count, skipped."""
    cfg = ckpt["config"]
    nu = np.ascontiguousarray(ckpt["nu"])
    dt = DTYPES[DTYPE_TAGS[nu.dtype.name]]
    sizes = [int(s) for s in ckpt["sizes"]]
    total = sum(sizes)
    bufs = [("nu", nu), ("mu", ckpt.get("mu")), ("trace", ckpt.get("trace"))]
    if (bufs[1][1] is not None) != bool(cfg.get("centered", False)):
        raise ValueError("mu must be given exactly when centered is set")
    if (bufs[2][1] is not None) != (cfg.get("momentum") is not None):
        raise ValueError("trace must be given exactly when momentum is set")
    mask, data = 0, []
    for bit, (name, b) in zip((HAS_NU, HAS_MU, HAS_TRACE), bufs):
        if b is None:
            continue
        b = np.asarray(b)
        if b.dtype != nu.dtype or b.size != total:
            raise ValueError(f"{name}: expected {total} {nu.dtype} values, got "
                             f"{b.size} {b.dtype}")
        mask |= bit
        data.append(b.astype(dt, copy=False).reshape(-1).tobytes())
    conf = _conf_bytes(cfg)
    layt = struct.pack("<B7xQ", DTYPE_TAGS[nu.dtype.name], len(sizes)) + b"".join(
        struct.pack("<Q", s) for s in sizes)
    stat = struct.pack("<iiQB7xQ", int(ckpt.get("schedule_count", 0)),
                       int(ckpt.get("bias_correction_count", 0)),
                       int(ckpt.get("skipped", 0)), mask, total) + b"".join(data)
    body = b"".join(SECTION.pack(tag, len(c)) + c
                    for tag, c in ((b"CONF", conf), (b"LAYT", layt), (b"STAT", stat)))
    framed = HEADER.pack(MAGIC, VERSION, 0, len(body)) + body
    return framed + struct.pack("<I", zlib.crc32(framed))


# ----------------------------------------------------------------------------------------
# Decoding: the same structural checks as the library (which also validates the values).

class _Reader:
    def __init__(self, b, what):
        self.b, self.pos, self.what = b, 0, what

    def take(self, n, field):
        if n > len(self.b) - self.pos:
            raise CheckpointError(f"{self.what}: {field} needs {n} bytes, only "
                                  f"{len(self.b) - self.pos} left")
        v = self.b[self.pos:self.pos + n]
        self.pos += n
        return v

    def unpack(self, fmt, field):
        st = struct.Struct("<" + fmt)
        v = st.unpack(self.take(st.size, field))
        return v[0] if len(v) == 1 else v

    def boolean(self, field):
        v = self.unpack("B", field)
        if v > 1:
            raise CheckpointError(f"{self.what}: {field} must be 0 or 1, got {v}")
        return bool(v)

    def opt_f64(self, field):
        present = self.boolean(field)
        raw = self.take(8, field)
        if not present and raw != bytes(8):
            raise CheckpointError(f"{self.what}: absent {field} must be stored as 0.0")
        return struct.unpack("<d", raw)[0] if present else None

    def count(self, elem_size, field):
        n = self.unpack("Q", field)
        if n * elem_size > len(self.b) - self.pos:
            raise CheckpointError(f"{self.what}: {field} = {n} does not fit")
        return n

    def section(self, tag):
        t = self.take(4, "section tag")
        if t != tag:
            raise CheckpointError(f"expected section {tag.decode()}, found {t!r}")
        n = self.count(1, "section length")
        return _Reader(self.take(n, tag.decode()), tag.decode() + " section")

    def finish(self):
        if self.pos != len(self.b):
            raise CheckpointError(f"{self.what}: {len(self.b) - self.pos} trailing bytes")


def _dec_schedule(r, depth):
    if depth > MAX_SCHEDULE_DEPTH:
        raise CheckpointError("schedule nested too deeply")
    tag = r.unpack("B", "schedule tag")
    if tag not in SCHEDULES:
        raise CheckpointError(f"unknown schedule tag {tag}")
    kind, fields = SCHEDULES[tag]
    s = {"kind": kind}
    if kind == "piecewise_constant":
        s["init_value"] = r.unpack("d", "init_value")
        n = r.count(16, "piecewise pair count")
        s["boundaries_and_scales"] = [list(r.unpack("qd", "pair")) for _ in range(n)]
    elif kind == "join":
        n = r.count(9, "join schedule count")
        s["schedules"] = [_dec_schedule(r, depth + 1) for _ in range(n)]
        nb = r.count(8, "join boundary count")
        s["boundaries"] = [r.unpack("q", "boundary") for _ in range(nb)]
    else:
        for name, t in fields:
            if t == "b":
                s[name] = r.boolean(name)
            elif t == "o":
                s[name] = r.opt_f64(name)
            else:
                s[name] = r.unpack(t, name)
    return s


def decode(data):
    """The dict `encode` takes, from checkpoint bytes; raises CheckpointError."""
    data = bytes(data)
    if len(data) < HEADER.size + 4:
        raise CheckpointError(f"truncated: {len(data)} bytes")
    magic, version, reserved, body_len = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CheckpointError("not an rmsprop checkpoint (bad magic bytes)")
    if HEADER.size + body_len + 4 != len(data):
        raise CheckpointError("length mismatch (truncated or trailing data)")
    stored = struct.unpack_from("<I", data, len(data) - 4)[0]
    if stored != zlib.crc32(data[:-4]):
        raise CheckpointError("checksum mismatch")
    if version == 0:
        raise CheckpointError("format version 0 does not exist")
    if version > VERSION:
        raise CheckpointError(f"format version {version} is newer than this tool ({VERSION})")
    if reserved != 0:
        raise CheckpointError("reserved header word must be 0 in version 1")
    body = _Reader(data[HEADER.size:-4], "body")

    c = body.section(b"CONF")
    decay, eps, initial_scale = c.unpack("ddd", "decay/eps/initial_scale")
    flags = c.unpack("B", "flags")
    if flags & ~31:
        raise CheckpointError(f"unknown flag bits {flags & ~31:#x}")
    momentum = c.opt_f64("momentum")
    kind = c.unpack("B", "learning-rate kind")
    if kind == 0:
        lr = c.unpack("d", "learning_rate")
    elif kind == 1:
        lr = _dec_schedule(c, 1)
    else:
        raise CheckpointError(f"unknown learning-rate kind {kind}")
    c.finish()
    cfg = {
        "learning_rate": lr, "decay": decay, "eps": eps, "initial_scale": initial_scale,
        "eps_in_sqrt": bool(flags & FLAG_EPS_IN_SQRT), "centered": bool(flags & FLAG_CENTERED),
        "momentum": momentum, "nesterov": bool(flags & FLAG_NESTEROV),
        "bias_correction": bool(flags & FLAG_BIAS_CORRECTION),
        "skip_non_finite": bool(flags & FLAG_SKIP_NON_FINITE),
    }
    for name in ("decay", "eps", "initial_scale"):
        if not math.isfinite(cfg[name]):
            raise CheckpointError(f"{name} must be finite")

    lay = body.section(b"LAYT")
    tag = lay.unpack("B", "dtype")
    if tag not in DTYPES:
        raise CheckpointError(f"unknown dtype tag {tag}")
    if lay.take(7, "padding") != bytes(7):
        raise CheckpointError("reserved bytes must be 0")
    n = lay.count(8, "tensor count")
    sizes = [lay.unpack("Q", "tensor size") for _ in range(n)]
    lay.finish()

    st = body.section(b"STAT")
    sc, bc, skipped, mask = st.unpack("iiQB", "counts")
    if st.take(7, "padding") != bytes(7):
        raise CheckpointError("reserved bytes must be 0")
    if mask & ~7 or not mask & HAS_NU:
        raise CheckpointError(f"invalid buffer mask {mask:#x}")
    if bool(mask & HAS_MU) != cfg["centered"] or bool(mask & HAS_TRACE) != (momentum is not None):
        raise CheckpointError("buffers do not match centered / momentum")
    if sc < 0 or bc < 0:
        raise CheckpointError("negative count")
    dt = DTYPES[tag]
    total = st.count(dt.itemsize, "element count")
    if total != sum(sizes):
        raise CheckpointError("element count does not match the layout")
    out = {"config": cfg, "sizes": sizes, "schedule_count": sc, "bias_correction_count": bc,
           "skipped": skipped, "mu": None, "trace": None}
    for bit, name in ((HAS_NU, "nu"), (HAS_MU, "mu"), (HAS_TRACE, "trace")):
        if mask & bit:
            raw = st.take(total * dt.itemsize, name)
            out[name] = np.frombuffer(raw, dtype=dt).astype(dt.newbyteorder("="))
    st.finish()
    body.finish()
    return out


# ----------------------------------------------------------------------------------------
# The optax side: flattened leaves (the npz) <-> checkpoint dict <-> live optax state.

def leaves_to_checkpoint(leaves, cfg):
    """A checkpoint dict from the npz leaves (a mapping) and the configuration."""
    n = sum(1 for k in leaves if k.startswith("nu_"))
    flat = {}
    sizes = []
    for name in ("nu", "mu", "trace"):
        if f"{name}_0" not in leaves and not (name == "nu" and n == 0):
            flat[name] = None
            continue
        parts = [np.asarray(leaves[f"{name}_{i}"]).reshape(-1) for i in range(n)]
        if name == "nu":
            sizes = [p.size for p in parts]
        flat[name] = (np.concatenate(parts) if parts else np.zeros(0, np.float32))
    sc = leaves.get("schedule_count")
    bc = leaves.get("bias_correction_count")
    sc = int(sc) if sc is not None else (int(bc) if bc is not None else 0)
    bc = int(bc) if bc is not None else sc
    return {"config": cfg, "sizes": sizes, "schedule_count": sc, "bias_correction_count": bc,
            "skipped": int(leaves.get("skipped", 0)), **flat}


def checkpoint_to_leaves(ckpt):
    """The npz leaves (a dict of numpy arrays) and the configuration of a checkpoint dict."""
    leaves = {}
    offs = np.cumsum([0] + list(ckpt["sizes"]))
    for name in ("nu", "mu", "trace"):
        if ckpt.get(name) is not None:
            for i in range(len(ckpt["sizes"])):
                leaves[f"{name}_{i}"] = ckpt[name][offs[i]:offs[i + 1]]
    leaves["schedule_count"] = np.int32(ckpt["schedule_count"])
    leaves["bias_correction_count"] = np.int32(ckpt["bias_correction_count"])
    leaves["skipped"] = np.uint64(ckpt["skipped"])
    return leaves, ckpt["config"]


def leaves_from_optax(state):
    """Flatten a live optax.rmsprop state (the tuple `opt.init` / `opt.update` return)."""
    import jax
    leaves = {}
    for part in state:
        fields = getattr(part, "_fields", ())  # optax states are NamedTuples
        for field in ("nu", "mu", "trace"):
            if field in fields:
                for i, x in enumerate(jax.tree_util.tree_leaves(getattr(part, field))):
                    leaves[f"{field}_{i}"] = np.asarray(x).reshape(-1)
        if "count" in fields:
            key = "bias_correction_count" if "nu" in fields else "schedule_count"
            leaves[key] = np.int32(np.asarray(part.count))
    return leaves


def make_schedule(s):
    """The optax schedule a JSON schedule describes."""
    import optax
    a = dict(SCHEDULE_DEFAULTS, **s)
    kind = s["kind"]
    if kind == "constant":
        return optax.constant_schedule(a["value"])
    if kind == "linear":
        return optax.linear_schedule(a["init_value"], a["end_value"], a["transition_steps"],
                                     a["transition_begin"])
    if kind == "polynomial":
        return optax.polynomial_schedule(a["init_value"], a["end_value"], a["power"],
                                         a["transition_steps"], a["transition_begin"])
    if kind == "exponential_decay":
        return optax.exponential_decay(a["init_value"], a["transition_steps"], a["decay_rate"],
                                       a["transition_begin"], a["staircase"], a["end_value"])
    if kind == "cosine_decay":
        return optax.cosine_decay_schedule(a["init_value"], a["decay_steps"], a["alpha"],
                                           a["exponent"])
    if kind == "warmup_cosine_decay":
        return optax.warmup_cosine_decay_schedule(a["init_value"], a["peak_value"],
                                                  a["warmup_steps"], a["decay_steps"],
                                                  a.get("end_value") or 0.0, a["exponent"])
    if kind == "warmup_exponential_decay":
        return optax.warmup_exponential_decay_schedule(
            a["init_value"], a["peak_value"], a["warmup_steps"], a["transition_steps"],
            a["decay_rate"], a["transition_begin"], a["staircase"], a["end_value"])
    if kind == "piecewise_constant":
        return optax.piecewise_constant_schedule(
            a["init_value"], {int(b): float(v) for b, v in a["boundaries_and_scales"]})
    if kind == "join":
        return optax.join_schedules([make_schedule(x) for x in a["schedules"]],
                                    list(a["boundaries"]))
    raise ValueError(f"unknown schedule kind {kind!r}")


def make_optax(cfg):
    """The optax.rmsprop a configuration describes."""
    import optax
    lr = cfg["learning_rate"]
    return optax.rmsprop(
        make_schedule(lr) if isinstance(lr, dict) else lr, decay=cfg.get("decay", 0.9),
        eps=cfg.get("eps", 1e-8), initial_scale=cfg.get("initial_scale", 0.0),
        eps_in_sqrt=cfg.get("eps_in_sqrt", True), centered=cfg.get("centered", False),
        momentum=cfg.get("momentum"), nesterov=cfg.get("nesterov", False),
        bias_correction=cfg.get("bias_correction", False))


def optax_state_from_leaves(leaves, cfg, params):
    """A live optax.rmsprop state for `params` (a pytree) holding the given leaves."""
    import jax
    import jax.numpy as jnp
    state = make_optax(cfg).init(params)
    treedef = jax.tree_util.tree_structure(params)
    shapes = [jnp.shape(x) for x in jax.tree_util.tree_leaves(params)]

    def tree(name):
        return jax.tree_util.tree_unflatten(
            treedef, [jnp.asarray(np.asarray(leaves[f"{name}_{i}"]).reshape(s))
                      for i, s in enumerate(shapes)])

    out = []
    for part in state:
        repl = {}
        fields = getattr(part, "_fields", ())
        for field in ("nu", "mu", "trace"):
            if field in fields:
                repl[field] = tree(field)
        if "count" in fields:
            key = "bias_correction_count" if "nu" in fields else "schedule_count"
            repl["count"] = jnp.asarray(leaves[key], dtype=jnp.int32)
        out.append(part._replace(**repl) if repl else part)
    return tuple(out)


# ----------------------------------------------------------------------------------------
# Command line.

def to_checkpoint(npz_path, config_path, out_path):
    with np.load(npz_path) as z:
        leaves = {k: z[k] for k in z.files}
    with open(config_path) as f:
        cfg = json.load(f)
    data = encode(leaves_to_checkpoint(leaves, cfg))
    with open(out_path, "wb") as f:
        f.write(data)
    return data


def from_checkpoint(ckpt_path, npz_path, config_path):
    with open(ckpt_path, "rb") as f:
        leaves, cfg = checkpoint_to_leaves(decode(f.read()))
    np.savez(npz_path, **leaves)
    with open(config_path, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


def show(ckpt_path):
    with open(ckpt_path, "rb") as f:
        c = decode(f.read())
    print(json.dumps(c["config"], indent=2))
    print(f"dtype {c['nu'].dtype}, sizes {c['sizes']}, counts schedule={c['schedule_count']} "
          f"bias_correction={c['bias_correction_count']}, skipped={c['skipped']}, buffers "
          + ", ".join(n for n in ("nu", "mu", "trace") if c[n] is not None))


def main(argv):
    if len(argv) == 4 and argv[0] == "to-checkpoint":
        to_checkpoint(*argv[1:])
    elif len(argv) == 4 and argv[0] == "from-checkpoint":
        from_checkpoint(*argv[1:])
    elif len(argv) == 2 and argv[0] == "show":
        show(argv[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
