"""Compiled LightGBM scoring: the model's trees as native code (lleaves on LLVM), built off the request path.

LightGBM's own ``predict`` spends ~0.1 ms per call before it touches a tree and walks the forest
generically; lleaves turns the same model file into one native function, which scores a 100-row
window about ten times faster (bench/results/ltr.json). ``CompilingScorer`` answers with
LightGBM's booster at once and switches to the compiled function when a background thread has
built it *and* checked it against the booster on probe rows (the two sum the trees in a different
order: they agree to ~1e-15, never bit for bit). A model that cannot be compiled, or whose compiled
scores disagree, keeps the booster and says why in the log.

Compiled objects are cached under ``<home>/compiled``, keyed by the model file's checksum, the
compiler's versions and the CPU it targets, written under a temporary name and renamed into place
with a checksum beside them: a damaged or foreign cache file is rebuilt, never loaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import threading
import uuid
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from ltr.training.scorer import Scorer, file_sha256

log = logging.getLogger(__name__)

#: compiled and booster scores must agree within this (relative to the score's size)
MAX_REL_DIFF = 1e-9
PROBE_ROWS = 256
ENTRY = "forest_root"


class CompilingScorer:
    """Scores with ``fallback`` until the compiled model is ready and verified, then with it."""

    def __init__(self, model_file: Path, fallback: Scorer, booster: Any, cache_dir: Path,
                 *, background: bool = True) -> None:
        self._fn: Scorer = fallback
        self._fallback = fallback
        self._model_file = model_file
        self._booster = booster  # for the probe rows: its split thresholds
        self._cache_dir = cache_dir
        self.done = threading.Event()
        self.compiled = False
        self.reason: str | None = None  # why the booster stayed in use, if it did
        if background:
            # not a daemon: a compile under way finishes before the process exits, never torn down mid-LLVM
            threading.Thread(target=self._build, name=f"compile-{model_file.parent.name}", daemon=False).start()
        else:
            self._build()

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        return self._fn(matrix)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the build to finish (compiled or not); whether it finished in time."""
        return self.done.wait(timeout)

    def _build(self) -> None:
        try:
            compiled = compile_model(self._model_file, self._cache_dir)
            probe = probe_matrix(split_thresholds(self._booster))
            expected = np.asarray(self._fallback(probe), dtype=np.float64)
            got = np.asarray(compiled(probe), dtype=np.float64)
            worst = float(np.max(np.abs(got - expected) / (1.0 + np.abs(expected))))
            if not worst <= MAX_REL_DIFF:
                raise ValueError(f"compiled scores differ from LightGBM's by up to {worst:.3g} (relative)")
            self._fn = compiled
            self.compiled = True
            log.info("compiled model in use", extra={"model_file": str(self._model_file)})
        except Exception as exc:  # ImportError, LLVM errors, a mismatch: keep LightGBM's own predict
            self.reason = f"{type(exc).__name__}: {exc}"
            log.warning("scoring with LightGBM's predict: the compiled model is unavailable",
                        extra={"model_file": str(self._model_file), "reason": self.reason})
        finally:
            self.done.set()


def probe_matrix(thresholds: list[np.ndarray], rows: int = PROBE_ROWS, seed: int = 0) -> np.ndarray:
    """Rows that exercise both sides of the forest's split points, and missing values, for every feature."""
    rng = np.random.default_rng(seed)
    columns = []
    for cuts in thresholds:
        if len(cuts) == 0:
            values = rng.normal(size=rows)
        else:
            around = np.concatenate([cuts - 1e-6 * (1 + np.abs(cuts)), cuts + 1e-6 * (1 + np.abs(cuts)),
                                     [cuts.min() - 1.0, cuts.max() + 1.0]])
            values = rng.choice(around, size=rows)
        values[rng.random(rows) < 0.1] = np.nan
        columns.append(values)
    return np.ascontiguousarray(np.column_stack(columns), dtype=np.float64)


def split_thresholds(booster: Any) -> list[np.ndarray]:
    """Each feature's split thresholds in a LightGBM booster (for ``probe_matrix``)."""
    cuts: list[set[float]] = [set() for _ in range(booster.num_feature())]
    stack = [tree["tree_structure"] for tree in booster.dump_model()["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_feature" in node:
            if isinstance(node.get("threshold"), (int, float)):  # categorical splits name sets instead
                cuts[node["split_feature"]].add(float(node["threshold"]))
            stack.extend((node["left_child"], node["right_child"]))
    return [np.array(sorted(c), dtype=np.float64) for c in cuts]


def compile_model(model_file: Path, cache_dir: Path) -> Scorer:
    """The model as a native function, from the cache when a verified object for it is there.

    lleaves parses the model and generates its LLVM IR; optimisation and machine code use
    llvmlite's own API directly, because lleaves 1.3's ``compile`` still calls the legacy pass
    manager that llvmlite 0.45 removed (siboehm/lleaves#95), and numba (via ranx) needs the new one.
    """
    import ctypes

    import llvmlite.binding as llvm
    import llvmlite.ir

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    cpu, features = llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()
    machine = llvm.Target.from_triple(llvm.get_process_triple()).create_target_machine(
        cpu=cpu, features=features, reloc="pic", codemodel="large")
    key = hashlib.sha256("|".join([file_sha256(model_file), _version("lleaves"), _version("llvmlite"),
                                   platform.machine(), cpu, features]).encode()).hexdigest()[:24]
    cache_dir.mkdir(parents=True, exist_ok=True)
    obj, check = cache_dir / f"{key}.o", cache_dir / f"{key}.sha256"
    cached = obj.read_bytes() if obj.is_file() and check.is_file() else None
    if cached is not None and hashlib.sha256(cached).hexdigest() != check.read_text().strip():
        log.warning("rebuilding a damaged compiled-model cache entry", extra={"path": str(obj)})
        cached = None
    fresh: list[bytes] = []
    if cached is None:
        from lleaves.compiler.ast import parse_to_ast
        from lleaves.compiler.codegen import gen_forest

        forest = parse_to_ast(str(model_file))
        forest.raw_score = False  # lambdarank has no output transform: raw scores, as LightGBM's predict
        ir_module = llvmlite.ir.Module(name="forest")
        gen_forest(forest, ir_module, 34, ENTRY, True)  # 34: lleaves' default icache block of trees
        ir_module.triple = llvm.get_process_triple()
        module = llvm.parse_assembly(str(ir_module))
        module.verify()
        builder = llvm.create_pass_builder(machine, llvm.create_pipeline_tuning_options(speed_level=3))
        builder.getModulePassManager().run(module, builder)
    else:
        module = llvm.parse_assembly("")  # the machine code comes from the cache
    engine = llvm.create_mcjit_compiler(module, machine)
    if cached is None:
        engine.set_object_cache(notify_func=lambda _module, buffer: fresh.append(bytes(buffer)))
    else:
        engine.set_object_cache(getbuffer_func=lambda _module: cached)
    engine.finalize_object()
    engine.run_static_constructors()
    if fresh:
        _publish(cache_dir, obj, check, fresh[0])
    # (double *rows, double *out, int32 start, int32 end), the arrays passed as addresses: building a
    # ctypes pointer object per array (``data_as``) cost ~4 us each, on every reranked search
    entry = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p,
                             ctypes.c_int32, ctypes.c_int32)(engine.get_function_address(ENTRY))

    def score(matrix: np.ndarray) -> np.ndarray:
        data = np.ascontiguousarray(matrix, dtype=np.float64)
        out = np.zeros(data.shape[0], dtype=np.float64)
        entry(data.ctypes.data, out.ctypes.data, 0, data.shape[0])
        return out

    score.engine = engine  # type: ignore[attr-defined]  # the machine code lives as long as the scorer
    return score


def _publish(cache_dir: Path, obj: Path, check: Path, payload: bytes) -> None:
    """Object, then its checksum, each under a temporary name renamed into place."""
    for target, data in ((obj, payload), (check, (hashlib.sha256(payload).hexdigest() + "\n").encode())):
        tmp = cache_dir / f".{target.name}.{uuid.uuid4().hex}"
        try:
            tmp.write_bytes(data)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"
