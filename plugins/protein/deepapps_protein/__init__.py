"""deepapps_protein: protein structure prediction for deepapps (hooks in :mod:`deepapps_protein.plugin`).

Python API (the same runners as ``deepapps.load("structure-prediction")``)::

    from deepapps_protein import predict, compare

    result = predict("MKTAYIAKQRQISFVKSHFSRQ")       # StructureResult
    result.save_pdb("query.pdb")                     # pLDDT in the B-factor column
    variant = compare(wt_sequence, mutant_sequence)  # VariantResult: displacement, ΔpLDDT

Importing this package stays light: torch and the model load on first use.
"""

from __future__ import annotations

from typing import Any

TASK = "structure-prediction"


def predict(inputs: Any, model: str | None = None, device: str = "auto", **options: Any):
    """Predict the structure of a sequence, FASTA text/file or PDB/mmCIF file (see the task's options)."""
    import deepapps

    return deepapps.load(TASK, model, device=device)(inputs, **options)


def compare(
    seq_wt: str,
    seq_mut: str,
    model: str | None = None,
    device: str = "auto",
    refine_steps: int | None = None,
    recycles: int | None = None,
):
    """Wild type vs mutant (equal length): per-residue Cα displacement (Å) and confidence change."""
    import deepapps

    from .plugin import REFINE_STEPS

    runner = deepapps.load(TASK, model, device=device)
    steps = REFINE_STEPS if refine_steps is None else int(refine_steps)
    return runner.compare(seq_wt, seq_mut, refine_steps=steps, recycles=recycles)


__all__ = ["compare", "predict"]
