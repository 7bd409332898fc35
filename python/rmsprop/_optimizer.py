"""rmsprop.RMSProp: optax.rmsprop over pytrees of arrays, through the library (see __init__)."""

from __future__ import annotations

import io
import os
from typing import Any, Dict, NamedTuple, Optional, Union

import numpy as np

from . import lowlevel as _ll
from .lowlevel import Optimizer, Options, Schedule, as_array
from .tree import TreeDef, flatten, leaf_paths, unflatten

__all__ = ["RMSProp", "RMSPropState"]

LearningRate = Union[float, Schedule]

#: ``state_dict()`` format marker and version (the checkpoint inside has its own version).
_STATE_DICT_FORMAT = "rmsprop.RMSProp"
_STATE_DICT_VERSION = 1

#: The hyperparameters that can change between steps (live), and their library setters.
_LIVE = ("learning_rate", "decay", "eps", "initial_scale", "momentum")


class RMSPropState(NamedTuple):
    """optax's state of ``optax.rmsprop``, in the parameters' structure and shapes.

    ``nu`` (``ScaleByRmsState.nu``), ``mu`` (centered only, else None), ``trace``
    (``TraceState.trace``, momentum only, else None), ``count`` (``ScaleByScheduleState.count``:
    the count the learning rate is evaluated at), ``bias_correction_count``
    (``ScaleByRmsWithCountState.count``) and ``skipped_steps`` (steps skipped for
    non-finite gradients)."""

    nu: Any
    mu: Any
    trace: Any
    count: int  # type: ignore[assignment]  # optax's name (shadows tuple.count)
    bias_correction_count: int
    skipped_steps: int


class RMSProp:
    """``optax.rmsprop(learning_rate, decay, eps, initial_scale, eps_in_sqrt, centered,
    momentum, nesterov, bias_correction)``, with its state, over a pytree of arrays.

    ``init(params)`` fixes the structure (an array, a list/tuple or nested dict of arrays;
    order: :mod:`rmsprop.tree`) and the dtype (float32 or float64, from the leaves) and
    creates the state, as optax ``init`` does. Then ``step(params, grads)`` is optax
    ``update`` + ``apply_updates``, in place in ``params``' own memory; ``update(grads)``
    returns the updates. ``params=`` in the constructor calls ``init`` for you.

    Extras beyond optax: ``skip_non_finite`` (skip a step whose gradients hold NaN/inf,
    as ``optax.apply_if_finite``), ``threads`` (0: one per core, 1: the calling thread, n:
    a pool of n), live hyperparameters (assign ``opt.learning_rate = ...``, ``opt.decay``,
    ``opt.eps``, ``opt.momentum``, ``opt.initial_scale``), checkpoints (``save``/``load``,
    ``state_dict``/``load_state_dict``, ``pickle``).
    """

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        decay: float = 0.9,
        eps: float = 1e-8,
        initial_scale: float = 0.0,
        eps_in_sqrt: bool = True,
        centered: bool = False,
        momentum: Optional[float] = None,
        nesterov: bool = False,
        bias_correction: bool = False,
        *,
        skip_non_finite: bool = False,
        threads: int = 0,
        params: Any = None,
        dtype: Any = None,
    ):
        self._config: Dict[str, Any] = {
            "learning_rate": learning_rate,
            "decay": decay,
            "eps": eps,
            "initial_scale": initial_scale,
            "eps_in_sqrt": eps_in_sqrt,
            "centered": centered,
            "momentum": momentum,
            "nesterov": nesterov,
            "bias_correction": bias_correction,
            "skip_non_finite": skip_non_finite,
        }
        if int(threads) < 0:
            raise ValueError(f"threads must be >= 0, got {threads}")
        self._threads = int(threads)
        self._opt: Optional[Optimizer] = None
        self._treedef: Optional[TreeDef] = None
        self._shapes: tuple = ()
        # Validate the configuration now (the library's messages), not at init().
        self._options().close()
        if params is not None:
            self.init(params, dtype=dtype)

    # -- construction ----------------------------------------------------------------------
    def _options(self) -> Options:
        c = dict(self._config)
        return Options(c.pop("learning_rate"), **c)

    def init(self, params: Any, dtype: Any = None) -> "RMSProp":
        """optax ``init``: fix the structure, shapes and dtype of ``params``, fresh state.

        Re-initializing drops the previous state; the configuration (with any live changes)
        is kept. Returns ``self``.
        """
        leaves, treedef = flatten(params)
        paths = leaf_paths(treedef, "params")
        arrays = [as_array(x, p) for x, p in zip(leaves, paths)]
        if dtype is None:
            dtypes = {a.dtype for a in arrays}
            if len(dtypes) > 1:
                raise TypeError(f"params mix dtypes {sorted(map(str, dtypes))}: pass dtype= or convert them")
            dtype = dtypes.pop() if dtypes else np.float32
        for a, p in zip(arrays, paths):
            if a.dtype != np.dtype(dtype):
                raise TypeError(f"{p} has dtype {a.dtype}, not the dtype= given ({np.dtype(dtype)}); no implicit copies")
        with self._options() as opts:
            opt = Optimizer(opts, [a.size for a in arrays], dtype=dtype)
        try:
            if self._threads:
                opt.threads = self._threads
        except BaseException:
            opt.close()
            raise
        self._install(opt, treedef, tuple(a.shape for a in arrays))
        return self

    def _install(self, opt: Optimizer, treedef: TreeDef, shapes: tuple) -> None:
        if self._opt is not None:
            self._opt.close()
        self._opt, self._treedef, self._shapes = opt, treedef, shapes
        self._closed = False

    @property
    def _o(self) -> Optimizer:
        if self._opt is None:
            if getattr(self, "_closed", False):
                raise RuntimeError("this RMSProp was closed: its state is gone (init(params) starts afresh)")
            raise RuntimeError("call init(params) first (optax init): the optimizer has no state yet")
        return self._opt

    # -- structure --------------------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        return self._opt is not None

    @property
    def dtype(self) -> np.dtype:
        """float32 or float64: the dtype of every parameter, gradient and state buffer."""
        return self._o.dtype

    @property
    def treedef(self) -> TreeDef:
        """The parameters' structure (see :mod:`rmsprop.tree`)."""
        self._o
        return self._treedef  # type: ignore[return-value]

    @property
    def shapes(self) -> tuple:
        """The shape of each leaf, in leaf order."""
        self._o
        return self._shapes

    @property
    def num_elements(self) -> int:
        return int(sum(int(np.prod(s)) for s in self._shapes))

    def _leaves(self, tree: Any, name: str, writeable: bool) -> list:
        leaves, treedef = flatten(tree)
        if treedef != self._treedef:
            # A single array for a single-leaf layout is fine whatever the container.
            if not (len(leaves) == 1 and self._treedef is not None and self._treedef.num_leaves == 1):
                raise ValueError(
                    f"{name} has another structure than the params given to init: "
                    f"{leaf_paths(treedef, name)} vs {leaf_paths(self._treedef, name)}"  # type: ignore[arg-type]
                )
        paths = leaf_paths(treedef, name)
        out = []
        for x, p, shape in zip(leaves, paths, self._shapes):
            a = as_array(x, p, self._o.dtype, writeable)
            if a.shape != shape:
                raise ValueError(f"{p} has shape {a.shape}, init saw {shape}")
            out.append(a)
        return out

    # -- steps ------------------------------------------------------------------------------
    def step(self, params: Any, grads: Any) -> bool:
        """optax ``update`` then ``apply_updates``, fused, **in place** in ``params``' arrays
        (their own memory: numpy arrays, PyTorch CPU tensors, ...). ``grads`` has the
        structure of ``params``. Returns False when the step was skipped (non-finite
        gradients with ``skip_non_finite``): then nothing changed."""
        opt = self._o
        p = self._leaves(params, "params", True)
        g = self._leaves(grads, "grads", False)
        if len(p) == 1:
            return opt.step(p[0].reshape(-1), g[0].reshape(-1))
        return opt.step_tensors(p, g)

    def update(self, grads: Any, out: Any = None) -> Any:
        """optax ``update``: the updates, in the structure and shapes of ``grads`` (new numpy
        arrays, or written into ``out``, a tree of arrays; ``out=grads`` computes in place)."""
        opt = self._o
        g = self._leaves(grads, "grads", False)
        if out is None:
            outs = [np.empty_like(a) for a in g]
            result = unflatten(self._treedef, [a.reshape(s) for a, s in zip(outs, self._shapes)])  # type: ignore[arg-type]
        else:
            outs = self._leaves(out, "out", True)
            result = out
        if len(g) == 1:
            opt.update(g[0].reshape(-1), outs[0].reshape(-1))
        else:
            opt.update_tensors(g, outs)
        return result

    # -- state ------------------------------------------------------------------------------
    def _component(self, name: str) -> Any:
        opt = self._o
        if not opt.has_state(name):
            return None
        leaves = [opt.get_state(name, i).reshape(s) for i, s in enumerate(self._shapes)]
        return unflatten(self._treedef, leaves)  # type: ignore[arg-type]

    @property
    def state(self) -> RMSPropState:
        """A copy of optax's state, in the parameters' structure and shapes."""
        opt = self._o
        count, bias = opt.counts
        return RMSPropState(
            self._component("nu"), self._component("mu"), self._component("trace"), count, bias, opt.skipped_steps
        )

    def set_state(
        self,
        nu: Any = None,
        mu: Any = None,
        trace: Any = None,
        count: Optional[int] = None,
        bias_correction_count: Optional[int] = None,
    ) -> None:
        """Overwrite parts of the state (e.g. carrying an optax state in): each given tree has
        the parameters' structure; a count alone sets that count, the other is kept.
        Everything is checked before anything changes."""
        opt = self._o
        parts = []
        for name, tree in (("nu", nu), ("mu", mu), ("trace", trace)):
            if tree is not None:
                if not opt.has_state(name):
                    raise ValueError(f"this configuration has no {name} state (see has_state)")
                parts.append((name, self._leaves(tree, name, False)))
        old = opt.counts
        counts = (old[0] if count is None else int(count), old[1] if bias_correction_count is None else int(bias_correction_count))
        if not all(0 <= c <= 2**31 - 1 for c in counts):
            raise ValueError(f"counts must be in [0, 2**31 - 1], got {counts}")
        for name, arrays in parts:
            for i, a in enumerate(arrays):
                opt.set_state(name, i, a.reshape(-1))
        if counts != old:
            opt.set_counts(*counts)

    def has_state(self, component: str) -> bool:
        """Whether the configuration keeps ``nu`` (always), ``mu`` (centered), ``trace`` (momentum)."""
        return self._o.has_state(component)

    def reset(self) -> None:
        """Back to the initial state (optax ``init``); hyperparameters and skip count kept."""
        self._o.reset()

    @property
    def counts(self) -> tuple:
        """(schedule count, bias-correction count)."""
        return self._o.counts

    @property
    def skipped_steps(self) -> int:
        return self._o.skipped_steps

    # -- hyperparameters --------------------------------------------------------------------
    @property
    def hyperparameters(self) -> Dict[str, Any]:
        """Every ``optax.rmsprop`` argument as it is now (live changes and loaded checkpoints
        included), plus ``skip_non_finite``; ``learning_rate`` is a float or a Schedule."""
        return dict(self._config)

    @property
    def learning_rate(self) -> float:
        """The learning rate the next step uses (the schedule's value at the current count).
        Assign a float or a Schedule to change it between steps (``inject_hyperparams``)."""
        if self._opt is None:
            lr = self._config["learning_rate"]
            return lr(0) if isinstance(lr, Schedule) else float(lr)
        return self._opt.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: LearningRate) -> None:
        self._set_live("learning_rate", value, Options.set_learning_rate, Optimizer.set_learning_rate)

    def _set_live(self, name: str, value: Any, options_setter, optimizer_setter) -> None:
        if self._opt is None:
            with self._options() as opts:  # validate with the library's rules and message
                options_setter(opts, value)
        else:
            optimizer_setter(self._opt, value)
        self._config[name] = value if isinstance(value, Schedule) or value is None else float(value)

    decay = property(
        lambda self: self._config["decay"],
        lambda self, v: self._set_live("decay", v, Options.set_decay, Optimizer.set_decay),
        doc="``decay``; assignable between steps.",
    )
    eps = property(
        lambda self: self._config["eps"],
        lambda self, v: self._set_live("eps", v, Options.set_eps, Optimizer.set_eps),
        doc="``eps``; assignable between steps.",
    )
    initial_scale = property(
        lambda self: self._config["initial_scale"],
        lambda self, v: self._set_live("initial_scale", v, Options.set_initial_scale, Optimizer.set_initial_scale),
        doc="``initial_scale``; assignable, takes effect at the next reset() or init().",
    )
    momentum = property(
        lambda self: self._config["momentum"],
        lambda self, v: self._set_momentum(v),
        doc="``momentum`` (None: no trace); assignable between steps when it was set at "
        "construction (a trace exists), before init() in any case.",
    )

    def _set_momentum(self, v: Optional[float]) -> None:
        if self._opt is None:
            self._set_live("momentum", v, Options.set_momentum, None)
        elif v is None:
            raise ValueError("momentum cannot be unset after init (the trace state exists); re-init instead")
        else:
            self._set_live("momentum", v, None, Optimizer.set_momentum)

    @property
    def threads(self) -> int:
        """0: rayon's global pool (one thread per core), 1: the calling thread, n: n threads."""
        return self._threads

    @threads.setter
    def threads(self, n: int) -> None:
        if int(n) < 0:
            raise ValueError(f"threads must be >= 0, got {n}")
        if self._opt is not None:
            self._opt.threads = int(n)
        self._threads = int(n)

    # -- checkpoints ------------------------------------------------------------------------
    def save(self, file: Union[None, str, "os.PathLike[str]", io.IOBase, Any] = None) -> Optional[bytes]:
        """The checkpoint: the full state and configuration (docs/checkpoint-format.md, the
        C library's format, readable from C and Rust). No argument: returns ``bytes``. A path:
        written atomically (temporary file, fsync, rename). A binary file object: written to it.
        The structure is not saved: load into an optimizer initialized with the same params."""
        opt = self._o
        if file is None:
            return opt.save_checkpoint()
        if isinstance(file, (str, bytes, os.PathLike)):
            opt.save_checkpoint_file(file)
            return None
        file.write(opt.save_checkpoint())
        return None

    def load(self, source: Any) -> None:
        """Load a checkpoint (bytes-like, a path, or a binary file object) saved by
        :meth:`save` (or by C/Rust) into this initialized optimizer: configuration and state
        become the checkpoint's; its layout (leaf sizes) and dtype must equal this one's.
        On any error nothing changes."""
        opt = self._o
        if isinstance(source, (str, os.PathLike)):
            opt.load_checkpoint_file(source)
            data = opt.save_checkpoint()
        else:
            data = source.read() if hasattr(source, "read") else source
            opt.load_checkpoint(data)
        self._config = _ll.checkpoint_config(data)

    @classmethod
    def from_checkpoint(cls, source: Any, params: Any = None, *, threads: int = 0) -> "RMSProp":
        """A new optimizer from a checkpoint (bytes-like, path or binary file object), in its
        dtype and layout. With ``params`` the state takes their structure and shapes (their
        sizes must match); without, the structure is a list of flat arrays, one per tensor."""
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as f:
                data = f.read()
        else:
            data = source.read() if hasattr(source, "read") else source
        opt = Optimizer.from_checkpoint(data)
        try:
            if params is not None:
                leaves, treedef = flatten(params)
                shapes = tuple(np.shape(as_array(x, p)) for x, p in zip(leaves, leaf_paths(treedef, "params")))
                sizes = tuple(int(np.prod(s)) for s in shapes)
                if sizes != opt.sizes:
                    raise ValueError(f"params have leaf sizes {sizes}, the checkpoint {opt.sizes}")
            else:
                shapes = tuple((n,) for n in opt.sizes)
                treedef = flatten([0] * len(shapes))[1]
            if threads:
                opt.threads = threads
        except BaseException:
            opt.close()
            raise
        self = cls.__new__(cls)
        self._config = _ll.checkpoint_config(data)
        self._threads = int(threads)
        self._opt = None
        self._install(opt, treedef, shapes)
        return self

    def state_dict(self) -> Dict[str, Any]:
        """A plain dict to save with the rest of a training run (``torch.save``, pickle, ...):
        the library checkpoint (``checkpoint``: bytes) plus the structure it belongs to."""
        return {
            "format": _STATE_DICT_FORMAT,
            "version": _STATE_DICT_VERSION,
            "checkpoint": self._o.save_checkpoint(),
            "leaves": leaf_paths(self._treedef, ""),  # type: ignore[arg-type]
            "shapes": [tuple(s) for s in self._shapes],
        }

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Load what :meth:`state_dict` returned, into an optimizer initialized with params
        of the same structure and shapes (checked first; unchanged on any error)."""
        if state_dict.get("format") != _STATE_DICT_FORMAT:
            raise ValueError(f"not an rmsprop.RMSProp state_dict (format {state_dict.get('format')!r})")
        if state_dict.get("version") != _STATE_DICT_VERSION:
            raise ValueError(f"unknown state_dict version {state_dict.get('version')!r}")
        mine = (leaf_paths(self.treedef, ""), [tuple(s) for s in self._shapes])
        theirs = (list(state_dict["leaves"]), [tuple(s) for s in state_dict["shapes"]])
        if mine != theirs:
            raise ValueError(f"state_dict is for leaves {theirs}, this optimizer has {mine}")
        self.load(state_dict["checkpoint"])

    # -- pickling: the checkpoint bytes, the structure, the thread setting -------------------
    def __getstate__(self) -> Dict[str, Any]:
        if self._opt is None:
            return {"config": self._config, "threads": self._threads}
        return {
            "checkpoint": self._opt.save_checkpoint(),
            "treedef": self._treedef,
            "shapes": self._shapes,
            "threads": self._threads,
        }

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self._opt = None
        self._threads = int(state.get("threads", 0))
        if "checkpoint" not in state:
            self._config = dict(state["config"])
            self._treedef, self._shapes = None, ()
            return
        opt = Optimizer.from_checkpoint(state["checkpoint"])
        if self._threads:
            opt.threads = self._threads
        self._config = _ll.checkpoint_config(state["checkpoint"])
        self._install(opt, state["treedef"], tuple(state["shapes"]))

    def __copy__(self) -> "RMSProp":
        new = RMSProp.__new__(RMSProp)
        new.__setstate__(self.__getstate__())
        return new

    def __deepcopy__(self, memo: dict) -> "RMSProp":
        return self.__copy__()

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Free the library's state now (else at garbage collection)."""
        if self._opt is not None:
            self._opt.close()
            self._opt = None
            self._closed = True

    def __enter__(self) -> "RMSProp":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._config.items())
        where = f", {len(self._shapes)} tensors, {self._opt.dtype}" if self._opt is not None else ""
        return f"RMSProp({args}{where})"
