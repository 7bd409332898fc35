"""Pytrees: how :class:`rmsprop.RMSProp` flattens nested parameters into the library's tensors.

A tree is a leaf (an array), ``None`` (no leaves), a ``dict`` (any ``Mapping``), a ``list``, a
``tuple`` or a ``namedtuple`` of trees. Leaves are taken in ``jax.tree_util`` order:
depth first; a mapping's children in **sorted key order** (so ``{"b": .., "a": ..}`` and
``{"a": .., "b": ..}`` give the same order, and an optax state of the same params lines up
with ours); a sequence's children in order. Each leaf is one tensor of the library's layout,
its elements in C order.

The structure (:class:`TreeDef`) is plain data: it pickles, compares with ``==`` and
rebuilds a tree of the same shape with :func:`unflatten`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Iterator, List, NamedTuple, Tuple

__all__ = ["TreeDef", "flatten", "unflatten", "leaf_paths"]


class TreeDef(NamedTuple):
    """A node: ``kind`` is "leaf", "none", "dict", "list", "tuple" or "namedtuple";
    ``keys`` the sorted keys of a dict (or the namedtuple's class); ``children`` the subtrees."""

    kind: str
    keys: Any = None
    children: Tuple["TreeDef", ...] = ()

    @property
    def num_leaves(self) -> int:
        if self.kind == "leaf":
            return 1
        return sum(c.num_leaves for c in self.children)


_LEAF = TreeDef("leaf")
_NONE = TreeDef("none")


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _sorted_keys(m: Mapping) -> list:
    try:
        return sorted(m.keys())
    except TypeError:
        raise TypeError(f"dict keys must be sortable (jax.tree_util order), got {list(m.keys())!r}") from None


def flatten(tree: Any) -> Tuple[List[Any], TreeDef]:
    """The leaves of ``tree`` in the documented order, and its structure."""
    leaves: List[Any] = []

    def walk(x: Any) -> TreeDef:
        if x is None:
            return _NONE
        if isinstance(x, Mapping):
            keys = _sorted_keys(x)
            return TreeDef("dict", tuple(keys), tuple(walk(x[k]) for k in keys))
        if _is_namedtuple(x):
            return TreeDef("namedtuple", type(x), tuple(walk(c) for c in x))
        if isinstance(x, (list, tuple)):
            return TreeDef(type(x).__name__ if type(x) in (list, tuple) else "list", None, tuple(walk(c) for c in x))
        leaves.append(x)
        return _LEAF

    treedef = walk(tree)
    return leaves, treedef


def unflatten(treedef: TreeDef, leaves: Any) -> Any:
    """The tree of structure ``treedef`` with ``leaves`` (in the documented order)."""
    it = iter(leaves)

    def build(d: TreeDef) -> Any:
        if d.kind == "leaf":
            return next(it)
        if d.kind == "none":
            return None
        kids = [build(c) for c in d.children]
        if d.kind == "dict":
            return dict(zip(d.keys, kids))
        if d.kind == "namedtuple":
            return d.keys(*kids)
        return tuple(kids) if d.kind == "tuple" else kids

    out = build(treedef)
    if next(it, _END) is not _END:
        raise ValueError("more leaves than the structure holds")
    return out


_END = object()


def leaf_paths(treedef: TreeDef, root: str = "") -> List[str]:
    """A readable path per leaf (``"['layer1']['w']"``, ``"[0]"``), for messages."""
    out: List[str] = []

    def walk(d: TreeDef, path: str) -> None:
        if d.kind == "leaf":
            out.append(path)
        elif d.kind == "dict":
            for k, c in zip(d.keys, d.children):
                walk(c, f"{path}[{k!r}]")
        elif d.kind == "namedtuple":
            for k, c in zip(d.keys._fields, d.children):
                walk(c, f"{path}.{k}")
        else:
            for i, c in enumerate(d.children):
                walk(c, f"{path}[{i}]")

    walk(treedef, root)
    return out


def _iter_leaves(tree: Any) -> Iterator[Any]:  # pragma: no cover - convenience
    yield from flatten(tree)[0]
