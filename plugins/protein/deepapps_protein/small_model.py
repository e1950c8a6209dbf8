"""The bundled model (``protein-fold-small``): network + structure step + calibrated confidence.

A checkpoint is one safetensors file (deepapps.runtime.checkpoint): the network's tensors, the
confidence head's weights (``confidence.weight``, one per feature in ``fold.CONFIDENCE_FEATURES``),
and JSON metadata holding the network config and the training record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepapps import CheckpointError

from .features import SS_STATES, contact_probability, expected_distance, residue_features
from .fold import CONFIDENCE_FEATURES, REFINE_STEPS, fold
from .prediction import Prediction

FORMAT = "deepapps-protein-fold-small/1"
CONFIDENCE_KEY = "confidence.weight"


def confidence_from_features(feats: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """pLDDT-like score (0-100): the calibrated linear map of the per-residue features, clipped."""
    return np.clip(feats @ weights, 0.0, 1.0) * 100.0


class SmallFoldModel:
    """``predict(sequence)`` -> :class:`Prediction` (Cα trace, SS, contacts, pLDDT)."""

    def __init__(self, net: Any, confidence: np.ndarray, metadata: dict, device: str = "cpu") -> None:
        self.net = net.eval().to(device)
        self.confidence = np.asarray(confidence, dtype=np.float64)
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
            plddt=confidence_from_features(out.confidence_features, self.confidence),
            ss=ss,
            contacts=contact_probability(dist_probs),
            distances=mean,
            ss_probs=ss_probs,
        )


def save_model(path: str | Path, net: Any, confidence: np.ndarray, metadata: dict) -> Path:
    import torch

    from deepapps.runtime.checkpoint import save_checkpoint

    tensors = dict(net.state_dict())
    tensors[CONFIDENCE_KEY] = torch.as_tensor(np.asarray(confidence, dtype=np.float32))
    meta = {
        "format": FORMAT,
        "config": net.config,
        "confidence_features": list(CONFIDENCE_FEATURES),
        **metadata,
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
    confidence = tensors.pop(CONFIDENCE_KEY).double().numpy()
    net = FoldNet(metadata["config"])
    try:
        net.load_state_dict(tensors)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the network config ({str(exc)[:200]})") from exc
    return SmallFoldModel(net, confidence, metadata, device)
