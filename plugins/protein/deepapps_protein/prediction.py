"""What every structure backend returns for one sequence, before it becomes a Result."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Prediction:
    """One predicted structure: Cα (L x 3), optional N/Cα/C/O backbone (L x 4 x 3), pLDDT (0-100),
    3-state secondary structure, its probabilities (L x 3, H/E/coil) when the model gives them,
    the contact probability map P(d < 8 Å) (L x L) and the expected distance map (L x L, Å)."""

    sequence: str
    ca: np.ndarray
    plddt: np.ndarray
    ss: str
    contacts: np.ndarray
    distances: np.ndarray | None = None
    ss_probs: np.ndarray | None = None
    backbone: np.ndarray | None = None
