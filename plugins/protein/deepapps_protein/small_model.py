"""The bundled model (``protein-fold-small``): network + structure step + calibrated confidence.

A checkpoint is one safetensors file (deepapps.runtime.checkpoint): the network's tensors, the
confidence head (``confidence.weight``: one weight per feature named in the metadata's
``confidence_features``; ``confidence.knots_x`` / ``confidence.knots_y``: the isotonic map, absent
in older checkpoints), and JSON metadata holding the network config and the training record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepapps import CheckpointError

from .confidence import FEATURES, LEGACY_FEATURES, apply_calibration, feature_matrix
from .features import SS_STATES, contact_probability, expected_distance, residue_features
from .fold import REFINE_STEPS, fold
from .prediction import Prediction

FORMAT = "deepapps-protein-fold-small/1"
CONFIDENCE_KEY = "confidence.weight"
KNOTS_X, KNOTS_Y = "confidence.knots_x", "confidence.knots_y"


class Calibration:
    """The confidence head: feature names, least-squares weights and isotonic knots."""

    def __init__(
        self,
        weights: np.ndarray,
        names: tuple[str, ...] | list[str] = FEATURES,
        knots_x: np.ndarray | None = None,
        knots_y: np.ndarray | None = None,
    ) -> None:
        self.weights = np.asarray(weights, dtype=np.float64)
        self.names = tuple(names)
        if len(self.weights) != len(self.names):
            raise CheckpointError(f"{len(self.weights)} confidence weights for features {self.names}")
        self.knots_x = None if knots_x is None else np.asarray(knots_x, dtype=np.float64)
        self.knots_y = None if knots_y is None else np.asarray(knots_y, dtype=np.float64)

    def __call__(self, signals: dict[str, np.ndarray]) -> np.ndarray:
        """pLDDT-like score (0-100) per residue."""
        x = feature_matrix(signals, self.names)
        return apply_calibration(x, self.weights, self.knots_x, self.knots_y)


class SmallFoldModel:
    """``predict(sequence)`` -> :class:`Prediction` (Cα trace, SS, contacts, pLDDT)."""

    def __init__(self, net: Any, confidence: Calibration | None, metadata: dict, device: str = "cpu") -> None:
        self.net = net.eval().to(device)
        self.confidence = confidence or Calibration(np.zeros(len(FEATURES)))
        self.metadata = metadata
        self.device = device

    def network_outputs(self, sequence: str) -> tuple[np.ndarray, np.ndarray]:
        """SS probabilities (L x 3) and distance-bin probabilities (L x L x B)."""
        import torch

        feats = torch.from_numpy(residue_features(sequence)).T[None].to(self.device)
        with torch.inference_mode():
            ss, dist = self.net.predict(feats)
        return ss.float().cpu().numpy().astype(np.float64), dist.float().cpu().numpy().astype(np.float64)

    def predict(
        self, sequence: str, refine_steps: int = REFINE_STEPS, recycles: int | None = None
    ) -> Prediction:
        """``recycles`` is ESMFold's option; this model has no recycling and ignores it."""
        ss_probs, dist_probs = self.network_outputs(sequence)
        out = fold(ss_probs, dist_probs, steps=refine_steps)
        mean, _ = expected_distance(dist_probs)
        ss = "".join(SS_STATES[k] for k in ss_probs.argmax(1))
        return Prediction(
            sequence=sequence,
            ca=out.ca,
            plddt=self.confidence(out.signals),
            ss=ss,
            contacts=contact_probability(dist_probs),
            distances=mean,
            ss_probs=ss_probs,
        )


def save_model(path: str | Path, net: Any, confidence: Calibration, metadata: dict) -> Path:
    import torch

    from deepapps.runtime.checkpoint import save_checkpoint

    tensors = dict(net.state_dict())
    tensors[CONFIDENCE_KEY] = torch.as_tensor(confidence.weights, dtype=torch.float64)
    if confidence.knots_x is not None:
        tensors[KNOTS_X] = torch.as_tensor(confidence.knots_x, dtype=torch.float64)
        tensors[KNOTS_Y] = torch.as_tensor(confidence.knots_y, dtype=torch.float64)
    meta = {
        "format": FORMAT,
        "config": net.config,
        **metadata,
        "confidence_features": list(confidence.names),
    }
    return save_checkpoint(path, tensors, meta)


def is_small_model_file(path: Path) -> bool:
    if path.suffix != ".safetensors" or not path.is_file():
        return False
    from deepapps.runtime.checkpoint import read_metadata

    try:
        return read_metadata(path).get("format") == FORMAT
    except CheckpointError:
        return False


def load_model(path: str | Path, device: str = "cpu") -> SmallFoldModel:
    from deepapps.runtime.checkpoint import load_checkpoint

    from .net import FoldNet

    tensors, metadata = load_checkpoint(path)
    if metadata.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a protein-fold-small checkpoint (format {metadata.get('format')!r})"
        )
    knots = [tensors.pop(k).double().numpy() if k in tensors else None for k in (KNOTS_X, KNOTS_Y)]
    confidence = Calibration(
        tensors.pop(CONFIDENCE_KEY).double().numpy(),
        metadata.get("confidence_features", LEGACY_FEATURES),
        *knots,
    )
    net = FoldNet(metadata["config"])
    try:
        net.load_state_dict(tensors)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the network config ({str(exc)[:200]})") from exc
    return SmallFoldModel(net, confidence, metadata, device)
