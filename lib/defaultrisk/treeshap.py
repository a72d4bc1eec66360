"""Exact path-dependent TreeSHAP by tables (FastTreeSHAP v2, Yang 2021, arXiv 2109.09847).

TreeSHAP's contribution of one leaf depends on a row only through which of the leaf's distinct path
features the row satisfies (goes the leaf's way at every split of that feature on the path). A leaf
with `d` distinct path features has `2**d` such patterns; for each, the Shapley shares of its `d`
features are computed once per model (`TreeExplainer`, built from the booster's JSON). Scoring a row
is then one walk over each tree's nodes (one comparison per split, one bit cleared where the row
leaves the path) and, per leaf, one table lookup and `d` additions.

The answer is XGBoost's `pred_contribs` (same trees, same float32 comparisons, NaN to the default
side, categorical splits with the category set going right) up to float rounding: XGBoost sums in
float32, the tables in float64. What the tables do not cover (dart, linear or multi-output boosters,
leaves with more than `MAX_PATH_FEATURES` distinct path features, tables over `MAX_TABLE_BYTES`, a
model file this parser does not understand) raises `Unsupported`; the caller falls back to XGBoost.

Memory: `sum over leaves of 2**d * d` float64 (table) plus `d` int32 (features) per leaf; at depth 6
and 100 trees at most 6,400 leaves * 64 * 6 * 8 bytes = 19 MiB.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass

import numpy as np

# Table limits: 2**8 patterns * 8 shares per leaf; beyond these XGBoost's own TreeSHAP runs.
MAX_PATH_FEATURES = 8
MAX_TABLE_BYTES = 256 * 2**20
# XGBoost's `InvalidCat`: a negative category, or one from 2**24 on, goes left like an unseen one.
_MAX_CATEGORY = float(2**24)
# Objectives whose base_score XGBoost keeps as a probability or a mean (the margin is its logit or
# log); the others keep the margin itself. Only the bias depends on this, never the contributions.
_LOGIT_BASE = ("binary:logistic", "reg:logistic")
_LOG_BASE = ("count:poisson", "reg:gamma", "reg:tweedie")


class Unsupported(ValueError):
    """The model has something the table algorithm does not cover: use XGBoost's TreeSHAP."""


def _numba_cache_dir() -> None:
    """Numba caches compiled kernels beside this file; where the package folder is read-only (a
    packed environment on an executor) it would fall back to the home cache, which may be missing
    too: then a private temporary folder, so the first call of a process compiles instead of failing."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")
    if os.access(here if os.path.isdir(here) else os.path.dirname(here), os.W_OK):
        return
    home_cache = os.path.join(os.path.expanduser("~"), ".cache")
    if os.access(home_cache if os.path.isdir(home_cache) else os.path.expanduser("~"), os.W_OK):
        return
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(
        tempfile.gettempdir(), f"defaultrisk-numba-{getattr(os, 'getuid', lambda: 0)()}"
    )


_numba_cache_dir()

from numba import njit  # noqa: E402  (after the cache folder is settled)


@njit(cache=True, nogil=True)
def _build_tables(leaf_d, leaf_value, leaf_zero, leaf_zero_start, leaf_table_start, table):
    """Per leaf and per pattern of its distinct path features, each feature's Shapley share.

    For a leaf of value `v` whose features have zero fractions `z` (the cover share that goes the
    leaf's way at the feature's splits) and one fractions `o` (1 where the row goes the leaf's way,
    from the pattern's bits), feature `i` gets
    `v * (o_i - z_i) * sum_k k! (d-1-k)! / d! * [t**k] prod_{j != i} (z_j + o_j t)`.
    """
    poly = np.empty(MAX_PATH_FEATURES + 1)
    for leaf in range(leaf_d.shape[0]):
        d = leaf_d[leaf]
        z = leaf_zero[leaf_zero_start[leaf] : leaf_zero_start[leaf] + d]
        weights = np.empty(d)
        for k in range(d):
            weights[k] = math.exp(math.lgamma(k + 1) + math.lgamma(d - k) - math.lgamma(d + 1))
        v = leaf_value[leaf]
        for pattern in range(1 << d):
            base = leaf_table_start[leaf] + pattern * d
            for i in range(d):
                o_i = (pattern >> i) & 1
                poly[0] = 1.0
                size = 1
                for j in range(d):
                    if j == i:
                        continue
                    o_j = (pattern >> j) & 1
                    poly[size] = 0.0
                    for k in range(size, 0, -1):
                        poly[k] = poly[k] * z[j] + poly[k - 1] * o_j
                    poly[0] = poly[0] * z[j]
                    size += 1
                total = 0.0
                for k in range(d):
                    total += weights[k] * poly[k]
                table[base + i] = v * (o_i - z[i]) * total


@njit(cache=True, nogil=True)
def _contributions(x, out, tree_start, nodes, leaves):
    """Add every tree's leaf shares to `out` (rows x features) for the float32 rows `x`.

    Nodes are numbered per tree so that a parent comes before its children; a node's pattern is its
    parent's with the parent's feature bit cleared when the row goes the other way there.
    """
    node_feature, node_threshold, node_default_left, node_category_start, node_category_size = nodes[:5]
    categories, node_parent, node_is_left, node_off_path, node_leaf = nodes[5:]
    leaf_d, leaf_feature_start, leaf_features, leaf_table_start, table = leaves
    widest = 0
    for t in range(tree_start.shape[0] - 1):
        widest = max(widest, tree_start[t + 1] - tree_start[t])
    goes_left = np.empty(widest, dtype=np.bool_)
    pattern = np.empty(widest, dtype=np.int64)
    for t in range(tree_start.shape[0] - 1):  # trees outside: a tree's tables stay in cache over the rows
        start = tree_start[t]
        for r in range(x.shape[0]):
            for node in range(start, tree_start[t + 1]):
                local = node - start
                parent = node_parent[node]  # within the tree; -1 at the root
                if parent < 0:
                    bits = np.int64(-1)
                else:
                    bits = pattern[parent]
                    if goes_left[parent] != node_is_left[node]:
                        bits &= node_off_path[node]
                pattern[local] = bits
                leaf = node_leaf[node]
                if leaf >= 0:
                    d = leaf_d[leaf]
                    base = leaf_table_start[leaf] + (bits & ((1 << d) - 1)) * d
                    features = leaf_feature_start[leaf]
                    for k in range(d):
                        out[r, leaf_features[features + k]] += table[base + k]
                    continue
                value = x[r, node_feature[node]]
                if math.isnan(value):
                    left = node_default_left[node]
                elif node_category_size[node] < 0:
                    left = value < node_threshold[node]
                elif value < 0 or value >= _MAX_CATEGORY:
                    left = True
                else:
                    code = int(value)
                    size = node_category_size[node]
                    left = code >= size or not categories[node_category_start[node] + code]
                goes_left[local] = left


def _first(value) -> float:
    """A JSON scalar that XGBoost 3.x writes as a one-element vector (`"[5E-1]"`)."""
    text = str(value).strip().strip("[]")
    if "," in text:
        raise Unsupported(f"vector-valued parameter {value!r}")
    return float(text)


@dataclass(frozen=True)
class _Tree:
    """One tree renumbered in breadth-first order from its root (unreachable nodes dropped)."""

    feature: np.ndarray
    threshold: np.ndarray
    default_left: np.ndarray
    category_size: np.ndarray
    category_sets: list
    parent: np.ndarray
    is_left: np.ndarray
    slot: np.ndarray
    leaf_value: np.ndarray  # per node, NaN for splits
    leaves: list  # per leaf: (node, features in slot order, zero fractions in slot order)
    mean: float


def _breadth_first(tree: dict, cat_sets: dict) -> tuple[list, list, list, list]:
    """The reachable nodes from the root, a parent always before its children: each one's old id,
    parent's position, side, and path from the root as (feature, cover share) per split."""
    left, right = tree["left_children"], tree["right_children"]
    split_index, cover = tree["split_indices"], tree["sum_hessian"]
    split_type = tree.get("split_type") or [0] * len(left)
    order, parents, lefts, paths = [0], [-1], [False], [()]  # path: (feature, cover share) per split
    position = 0
    while position < len(order):
        old = order[position]
        if left[old] != -1:
            if split_type[old] not in (0, 1) or (split_type[old] == 1 and old not in cat_sets):
                raise Unsupported(f"split type {split_type[old]} at node {old}")
            if cover[old] <= 0:
                raise Unsupported("a split with no cover")
            for child, is_left in ((left[old], True), (right[old], False)):
                order.append(child)
                parents.append(position)
                lefts.append(is_left)
                paths.append(paths[position] + ((split_index[old], cover[child] / cover[old]),))
            if len(order) > len(left):
                raise Unsupported("a tree whose children do not form a tree")
        position += 1
    return order, parents, lefts, paths


def _parse_tree(tree: dict) -> _Tree:
    left, right = tree["left_children"], tree["right_children"]
    split_index, condition = tree["split_indices"], tree["split_conditions"]
    cover, default_left = tree["sum_hessian"], tree["default_left"]
    split_type = tree.get("split_type") or [0] * len(left)
    if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
        raise Unsupported("vector leaves (multi-output trees)")
    cat_nodes = tree.get("categories_nodes") or []
    segments, sizes, cats = (
        tree.get("categories_segments"),
        tree.get("categories_sizes"),
        tree.get("categories"),
    )
    cat_sets = {node: cats[segments[k] : segments[k] + sizes[k]] for k, node in enumerate(cat_nodes)}
    order, parents, lefts, path = _breadth_first(tree, cat_sets)
    n = len(order)
    feature = np.zeros(n, dtype=np.int32)
    threshold = np.zeros(n, dtype=np.float32)
    defaults = np.zeros(n, dtype=np.bool_)
    category_size = np.full(n, -1, dtype=np.int32)
    category_sets: list = [None] * n
    slot = np.zeros(n, dtype=np.int32)
    leaf_value = np.full(n, np.nan)
    leaves = []
    for new, old in enumerate(order):
        features = list(dict.fromkeys(f for f, _ in path[new]))  # first appearance on the path
        if left[old] == -1:
            leaf_value[new] = condition[old]
            zero = [math.prod(share for f, share in path[new] if f == g) for g in features]
            leaves.append((new, features, zero))
            continue
        feature[new] = split_index[old]
        defaults[new] = bool(default_left[old])
        slot[new] = [*features, split_index[old]].index(split_index[old])
        if split_type[old] == 1:
            codes = np.asarray(cat_sets[old], dtype=np.int64)
            member = np.zeros(int(codes.max()) + 1 if len(codes) else 0, dtype=np.bool_)
            member[codes] = True
            category_size[new] = len(member)
            category_sets[new] = member
        else:
            threshold[new] = np.float32(condition[old])
    return _Tree(
        feature,
        threshold,
        defaults,
        category_size,
        category_sets,
        np.asarray(parents, dtype=np.int32),
        np.asarray(lefts, dtype=np.bool_),
        slot,
        leaf_value,
        leaves,
        _mean_value(0, left, right, cover, condition),
    )


class TreeExplainer:
    """Per-leaf TreeSHAP tables of one booster, built once; `contributions` per float32 matrix."""

    def __init__(self, model_json: bytes | str | dict):
        model = json.loads(model_json) if not isinstance(model_json, dict) else model_json
        learner = model["learner"]
        booster = learner["gradient_booster"]
        if booster.get("name") != "gbtree":
            raise Unsupported(f"booster {booster.get('name')!r}: only gbtree has tables")
        params = learner["learner_model_param"]
        if int(params.get("num_class", "0")) > 1 or int(params.get("num_target", "1")) > 1:
            raise Unsupported("more than one output")
        gbtree = booster["model"]
        self.n_features = int(params["num_feature"])
        objective = learner.get("objective", {}).get("name", "")
        base = _first(params["base_score"])
        if objective in _LOGIT_BASE:
            base = math.log(base / (1 - base))
        elif objective in _LOG_BASE:
            base = math.log(base)
        self.base_margin = base
        trees = [_parse_tree(tree) for tree in gbtree["trees"]]
        self.n_trees = len(trees)
        self.bias = self.base_margin + math.fsum(tree.mean for tree in trees)
        self._pack(trees)

    def _pack(self, trees: list[_Tree]) -> None:
        sizes = [len(tree.feature) for tree in trees]
        self.tree_start = np.zeros(len(trees) + 1, dtype=np.int64)
        np.cumsum(sizes, out=self.tree_start[1:])
        offsets = self.tree_start[:-1]
        self.node_feature = np.concatenate([t.feature for t in trees])
        self.node_threshold = np.concatenate([t.threshold for t in trees])
        self.node_default_left = np.concatenate([t.default_left for t in trees])
        self.node_parent = np.concatenate([t.parent for t in trees])
        self.node_is_left = np.concatenate([t.is_left for t in trees])
        # The pattern bits a node keeps when the row goes the other way at its parent.
        self.node_off_path = np.concatenate([~(np.int64(1) << t.slot[t.parent]) for t in trees])
        self.node_category_size = np.concatenate([t.category_size for t in trees])
        sets = [s for t in trees for s in t.category_sets]
        set_sizes = np.asarray([len(s) if s is not None else 0 for s in sets], dtype=np.int64)
        self.node_category_start = np.zeros(len(sets), dtype=np.int64)
        np.cumsum(set_sizes[:-1], out=self.node_category_start[1:])
        self.categories = np.concatenate([np.zeros(0, dtype=np.bool_)] + [s for s in sets if s is not None])
        leaves = [
            (node + o, f, z, t.leaf_value[node])
            for t, o in zip(trees, offsets, strict=True)
            for node, f, z in t.leaves
        ]
        self.leaf_d = np.asarray([len(f) for _, f, _, _ in leaves], dtype=np.int64)
        if self.leaf_d.max(initial=0) > MAX_PATH_FEATURES:
            raise Unsupported(
                f"a leaf with {self.leaf_d.max()} distinct path features (at most {MAX_PATH_FEATURES})"
            )
        entries = (self.leaf_d << self.leaf_d) if leaves else self.leaf_d
        self.table_bytes = int(entries.sum()) * 8
        if self.table_bytes > MAX_TABLE_BYTES:
            raise Unsupported(
                f"tables of {self.table_bytes / 2**20:.0f} MiB (at most {MAX_TABLE_BYTES >> 20})"
            )
        self.node_leaf = np.full(len(self.node_feature), -1, dtype=np.int64)
        self.node_leaf[[node for node, _, _, _ in leaves]] = np.arange(len(leaves))
        self.leaf_feature_start = np.zeros(len(leaves), dtype=np.int64)
        np.cumsum(self.leaf_d[:-1], out=self.leaf_feature_start[1:])
        self.leaf_features = np.asarray([g for _, f, _, _ in leaves for g in f], dtype=np.int32)
        leaf_zero = np.asarray([s for _, _, z, _ in leaves for s in z], dtype=np.float64)
        leaf_value = np.asarray([v for _, _, _, v in leaves], dtype=np.float64)
        self.leaf_table_start = np.zeros(len(leaves), dtype=np.int64)
        np.cumsum(entries[:-1], out=self.leaf_table_start[1:])
        self.table = np.empty(int(entries.sum()), dtype=np.float64)
        _build_tables(
            self.leaf_d, leaf_value, leaf_zero, self.leaf_feature_start, self.leaf_table_start, self.table
        )

    @classmethod
    def from_booster(cls, booster) -> TreeExplainer:
        return cls(bytes(booster.save_raw(raw_format="json")))

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Each feature's share of each row's margin (rows x features, float64), bias excluded."""
        x = np.ascontiguousarray(matrix, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected a matrix of {self.n_features} features, got shape {x.shape}")
        out = np.zeros((len(x), self.n_features), dtype=np.float64)
        nodes = (
            self.node_feature,
            self.node_threshold,
            self.node_default_left,
            self.node_category_start,
            self.node_category_size,
            self.categories,
            self.node_parent,
            self.node_is_left,
            self.node_off_path,
            self.node_leaf,
        )
        leaves = (self.leaf_d, self.leaf_feature_start, self.leaf_features, self.leaf_table_start, self.table)
        _contributions(x, out, self.tree_start, nodes, leaves)
        return out


def _mean_value(node: int, left: list, right: list, cover: list, condition: list) -> float:
    """The tree's expected value as XGBoost's TreeSHAP computes it (children weighted by cover)."""
    if left[node] == -1:
        return float(condition[node])
    a, b = left[node], right[node]
    return (
        _mean_value(a, left, right, cover, condition) * cover[a]
        + _mean_value(b, left, right, cover, condition) * cover[b]
    ) / cover[node]
