"""ESMFold through transformers' ``EsmForProteinFolding`` (real weights by path, tiny ones in tests).

A model folder is what ``save_pretrained`` writes (``config.json`` with ``is_folding_model: true``
and the weights); transformers reads ``.bin`` weights with ``torch.load(weights_only=True)``, so
no code in them runs. ``infer`` does its own residue encoding (AlphaFold order,
``residue_constants.restypes_with_x``), so no tokenizer or vocabulary file is needed here.

Outputs mapped to a :class:`Prediction`: the N, Cα, C, O atoms of the last structure-module
iteration (atom14 slots 0-3), pLDDT of the Cα (x100 when the model gives 0-1), the distogram's
P(d < 8 Å) as the contact map (64 bins, 2.3125-21.6875 Å, Cβ distances as in AlphaFold), its
expected distance, and DSSP's 3 states of the predicted backbone (pydssp).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from deepapps import ModelNotAvailableError

from .prediction import Prediction
from .structure_io import assign_secondary_structure

DISTOGRAM_EDGES = np.linspace(2.3125, 21.6875, 63)
HUB_ID = "facebook/esmfold_v1"


def is_esmfold_dir(path: Path) -> bool:
    config = Path(path) / "config.json"
    if not config.is_file():
        return False
    try:
        data = json.loads(config.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return bool(data.get("is_folding_model")) and data.get("model_type") == "esm"


class ESMFold:
    """``predict(sequence)`` -> :class:`Prediction` with a full backbone."""

    def __init__(self, model, device: str) -> None:
        self.model = model
        self.device = device

    @classmethod
    def load(cls, path: str | Path, device: str, chunk_size: int | None = None) -> ESMFold:
        from transformers import EsmForProteinFolding

        path = Path(path)
        if not is_esmfold_dir(path):
            raise ModelNotAvailableError(
                f"{path} is not an ESMFold folder (config.json with is_folding_model: true); "
                f"download {HUB_ID} where the hub is reachable and pass its folder"
            )
        model = EsmForProteinFolding.from_pretrained(str(path), local_files_only=True)
        model = model.float().eval().to(device)
        if chunk_size:
            model.trunk.set_chunk_size(chunk_size)
        return cls(model, device)

    def predict(
        self, sequence: str, refine_steps: int | None = None, recycles: int | None = None
    ) -> Prediction:
        """``refine_steps`` belongs to protein-fold-small's structure step; ESMFold ignores it."""
        import torch

        with torch.inference_mode():
            if recycles is None:
                out = self.model.infer(sequence)
            else:
                out = self._forward(sequence, recycles)
        positions = out["positions"][-1, 0].float().cpu().numpy().astype(np.float64)  # L x 14 x 3
        backbone = positions[:, :4]
        plddt = out["plddt"][0, :, 1].float().cpu().numpy().astype(np.float64)
        if plddt.max(initial=0.0) <= 1.0:
            plddt = plddt * 100.0
        probs = out["distogram_logits"][0].float().softmax(-1).cpu().numpy().astype(np.float64)
        probs = 0.5 * (probs + probs.transpose(1, 0, 2))
        centres = np.concatenate([[2.0], (DISTOGRAM_EDGES[:-1] + DISTOGRAM_EDGES[1:]) / 2, [23.0]])
        contacts = probs[..., : int(np.searchsorted(DISTOGRAM_EDGES, 8.0))].sum(-1)
        return Prediction(
            sequence=sequence,
            ca=backbone[:, 1].copy(),
            plddt=plddt,
            ss=assign_secondary_structure(backbone),
            contacts=contacts,
            distances=probs @ centres,
            backbone=backbone,
        )

    def _forward(self, sequence: str, recycles: int):
        """``infer`` with an explicit number of recycles (its own encoding, AlphaFold residue order)."""
        import torch
        from transformers.models.esm.openfold_utils import residue_constants as rc

        aatype = torch.tensor(
            [[rc.restype_order_with_x.get(c, rc.restype_num) for c in sequence]], device=self.device
        )
        mask = torch.ones_like(aatype)
        position_ids = torch.arange(len(sequence), device=self.device)[None]
        return self.model(aatype, mask, position_ids=position_ids, num_recycles=recycles)
