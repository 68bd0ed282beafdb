"""A fold ensemble as one LightGBM model file: the mean of k boosters is one forest with every leaf divided by k.

The inner cross-validation already trains one booster per fold; averaging them (bagging by query) is
steadier than the one refit booster whose tree count the same CV chose (docs/ltr.md, issue 14). Stored as
one ordinary model file, the ensemble needs nothing new downstream: LightGBM's ``predict``, the compiled
scorer, the contract's checksum and the registry read it as any model. LightGBM has no API to concatenate
boosters, so the file is assembled from their text dumps (the documented model format): the trees of
every booster in turn, renumbered, each leaf value scaled by 1/k; ``tree_sizes`` (an optional index for
parallel parsing) is dropped and the loader parses the trees in order. ``merge_boosters`` checks the
result against the boosters' mean before anyone stores it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hybridrank.errors import HybridRankError

END_OF_TREES = "end of trees"
#: the merged forest must reproduce the boosters' mean to this (relative to the scores' size)
MAX_REL_DIFF = 1e-9


def merge_model_texts(texts: Sequence[str]) -> str:
    """One model text whose raw score is the mean of ``texts``' raw scores (same features, one class each)."""
    if not texts:
        raise HybridRankError("a fold ensemble needs at least one booster")
    headers, trees, tails = zip(*(_split(t) for t in texts), strict=True)
    names = {_value(h, "feature_names") for h in headers}
    if len(names) != 1:
        raise HybridRankError("the boosters of a fold ensemble were trained on different features")
    scale = 1.0 / len(texts)
    out = [_merged_header(headers)]
    for index, block in enumerate(b for booster in trees for b in booster):
        out.append(_scaled_tree(block, index, scale))
    return "".join(out) + END_OF_TREES + tails[0]


def merge_boosters(boosters: Sequence[Any], num_iteration: int, probe: np.ndarray) -> str:
    """The fold ensemble of ``boosters`` (each cut at ``num_iteration`` trees), checked on ``probe`` rows."""
    import lightgbm as lgb

    text = merge_model_texts([b.model_to_string(num_iteration=num_iteration) for b in boosters])
    merged = lgb.Booster(model_str=text)
    want = np.mean([b.predict(probe, num_iteration=num_iteration) for b in boosters], axis=0)
    got = merged.predict(probe)
    if not np.allclose(got, want, rtol=0.0, atol=MAX_REL_DIFF * max(1.0, float(np.max(np.abs(want))))):
        raise HybridRankError("the merged fold ensemble does not reproduce its boosters' mean score")
    return text


def _split(text: str) -> tuple[str, list[str], str]:
    """(header, tree blocks, everything after "end of trees") of one model text."""
    body, sep, tail = text.partition(END_OF_TREES)
    if not sep:
        raise HybridRankError("not a LightGBM model text (no 'end of trees')")
    header, *blocks = body.split("\nTree=")
    if _value(header, "num_tree_per_iteration") != "1":
        raise HybridRankError("a fold ensemble merges single-output (ranking) boosters only")
    return header + "\n", ["Tree=" + b for b in blocks], tail


def _value(header: str, key: str) -> str:
    for line in header.splitlines():
        if line.startswith(key + "="):
            return line[len(key) + 1:]
    raise HybridRankError(f"LightGBM model text without {key!r}")


def _merged_header(headers: Sequence[str]) -> str:
    """The first header without ``tree_sizes``, each feature's range taken from a booster that used it."""
    infos = [_value(h, "feature_infos").split(" ") for h in headers]
    merged = [next((i[f] for i in infos if i[f] != "none"), "none") for f in range(len(infos[0]))]
    lines = []
    for line in headers[0].splitlines():
        if line.startswith("tree_sizes="):
            continue
        lines.append("feature_infos=" + " ".join(merged) if line.startswith("feature_infos=") else line)
    return "\n".join(lines) + "\n\n"


def _scaled_tree(block: str, index: int, scale: float) -> str:
    lines = block.strip("\n").splitlines()
    lines[0] = f"Tree={index}"
    if "is_linear=1" in lines:
        raise HybridRankError("a fold ensemble merges ordinary trees only (not linear_tree models)")
    for i, line in enumerate(lines):
        if line.startswith("leaf_value="):
            values = (float(v) * scale for v in line[len("leaf_value="):].split(" "))
            lines[i] = "leaf_value=" + " ".join(repr(v) for v in values)
    return "\n".join(lines) + "\n\n\n"
