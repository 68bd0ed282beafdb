"""What a loaded model scores with, and the checksum that names its model file.

``Scorer`` is what every backend returns (LightGBM's booster, the ListNet forward pass, the compiled
forest) and ``file_sha256`` the checksum a contract records and the compile cache is keyed by. The
loader (``ltr.training.model``) and the compiler (``ltr.training.compiled``) both need them; here,
the loader can import the compiler without the compiler importing the loader back.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

import numpy as np


class Scorer(Protocol):
    def __call__(self, matrix: np.ndarray) -> np.ndarray: ...


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
