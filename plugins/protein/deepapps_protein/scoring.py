"""Scoring a prediction against a reference structure (an input PDB, an uploaded file, a test chain).

Residues are matched by sequence: identical sequences match one to one; otherwise the two are
aligned globally (biotite, BLOSUM62) and the metrics use the aligned, identical-or-not residue
pairs. Reported: TM-score, lDDT-Cα, RMSD and GDT_TS on the matched residues, TM-align
(sequence-independent), Q3 where the reference has a backbone (DSSP via pydssp) or a given SS
string, and top-L/5 long-range contact precision.
"""

from __future__ import annotations

import numpy as np

from deepapps import InputError

from .metrics import contact_precision, q3, score_structure, tm_align
from .prediction import Prediction
from .structure_io import Chain

MIN_MATCHED = 10


def residue_map(pred_seq: str, ref_seq: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into the prediction, into the reference) of matched residues."""
    if pred_seq == ref_seq:
        idx = np.arange(len(ref_seq))
        return idx, idx
    import biotite.sequence as bseq
    import biotite.sequence.align as align

    matrix = align.SubstitutionMatrix.std_protein_matrix()
    ali = align.align_optimal(
        bseq.ProteinSequence(pred_seq),
        bseq.ProteinSequence(ref_seq),
        matrix,
        gap_penalty=(-10, -1),
        terminal_penalty=False,
        max_number=1,
    )[0]
    trace = ali.trace[(ali.trace >= 0).all(axis=1)]
    return trace[:, 0], trace[:, 1]


def score(
    prediction: Prediction, reference: Chain, reference_ss: str | None = None
) -> dict[str, float | int | str]:
    """Every metric of ``prediction`` against ``reference`` (see the module docstring)."""
    pi, ri = residue_map(prediction.sequence, reference.sequence)
    if len(pi) < MIN_MATCHED:
        raise InputError(
            f"reference {reference.id}: only {len(pi)} residues align with the predicted sequence; "
            f"at least {MIN_MATCHED} are needed to score"
        )
    pred, ref = prediction.ca[pi], reference.ca[ri]
    out: dict[str, float | int | str] = {
        "reference": reference.id,
        "matched_residues": int(len(pi)),
        "identity": float(
            np.mean([prediction.sequence[i] == reference.sequence[j] for i, j in zip(pi, ri, strict=True)])
        ),
    }
    out.update(score_structure(pred, ref))
    out.update(tm_align(prediction.ca, reference.ca, prediction.sequence, reference.sequence))
    ref_ss = reference_ss if reference_ss is not None else reference.secondary_structure()
    if ref_ss is not None:
        out["q3"] = q3("".join(prediction.ss[i] for i in pi), "".join(ref_ss[j] for j in ri))
    out["contact_precision_long_l5"] = contact_precision(prediction.contacts[np.ix_(pi, pi)], ref)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}
