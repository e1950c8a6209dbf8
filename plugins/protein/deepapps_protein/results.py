"""Result types of the protein tasks: one structure, a wild-type/mutant comparison, a SS prediction."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepapps import Result
from deepapps.results import private

from .prediction import Prediction
from .structure_io import pdb_text


def _figure_to_image(fig):
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    import matplotlib.pyplot as plt

    plt.close(fig)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@dataclass(kw_only=True)
class StructureResult(Result):
    """A predicted structure: Cα coordinates (Å), pLDDT-like confidence (0-100), 3-state secondary
    structure, the contact map (``contacts``, private: L x L), and scores against a reference
    structure when one was given (an input PDB/mmCIF file)."""

    id: str = ""
    sequence: str = ""
    length: int = 0
    ss: str = ""
    plddt: list[float] = field(default_factory=list)
    mean_plddt: float = 0.0
    ca: list[list[float]] = field(default_factory=list)
    backbone_atoms: str = "CA"  # or "N,CA,C,O"
    reference: dict[str, Any] | None = None
    pdb_path: str | None = None
    prediction: Prediction | None = private()

    @classmethod
    def from_prediction(cls, rid: str, pred: Prediction, reference: dict | None = None) -> StructureResult:
        return cls(
            id=rid,
            sequence=pred.sequence,
            length=len(pred.sequence),
            ss=pred.ss,
            plddt=[round(float(v), 1) for v in pred.plddt],
            mean_plddt=round(float(np.mean(pred.plddt)), 2),
            ca=np.round(pred.ca, 3).tolist(),
            backbone_atoms="CA" if pred.backbone is None else "N,CA,C,O",
            reference=reference,
            prediction=pred,
        )

    @property
    def contacts(self) -> np.ndarray:
        return self.prediction.contacts

    def to_pdb(self) -> str:
        """PDB text: Cα (or N/Cα/C/O) atoms with the pLDDT in the B-factor column."""
        pred = self.prediction
        remarks = (
            f"deepapps structure-prediction model {self.model}",
            f"id {self.id}",
            "B-factor column: predicted confidence (pLDDT-like, 0-100)",
        )
        return pdb_text(pred.sequence, pred.ca, pred.plddt, pred.backbone, remarks=remarks)

    def save_pdb(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_pdb())
        self.pdb_path = str(path)
        return path

    def summary(self) -> str:
        text = f"{self.length} aa, mean pLDDT {self.mean_plddt:.1f}, SS {self.ss[:60]}"
        text += "..." if self.length > 60 else ""
        if self.reference:
            r = self.reference
            text += f" | vs {r['reference']}: TM {r['tm_score']:.3f}, lDDT-Cα {r['lddt_ca']:.3f}, RMSD {r['rmsd']:.2f} Å"
        return text + (f" | {self.pdb_path}" if self.pdb_path else "")

    def plot(self):
        """Cα trace (projected on its two main axes) coloured by confidence, contact map, confidence track."""
        plt = _pyplot()
        pred = self.prediction
        fig, ax = plt.subplots(1, 3, figsize=(12, 4))
        centred = pred.ca - pred.ca.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ vt[:2].T
        ax[0].plot(xy[:, 0], xy[:, 1], color="0.7", lw=1, zorder=1)
        sc = ax[0].scatter(xy[:, 0], xy[:, 1], c=pred.plddt, cmap="RdYlBu", vmin=0, vmax=100, s=14, zorder=2)
        ax[0].set(title=f"{self.id}: Cα trace (Å)", aspect="equal")
        fig.colorbar(sc, ax=ax[0], label="pLDDT")
        ax[1].imshow(pred.contacts, cmap="Greys", vmin=0, vmax=1, origin="upper")
        ax[1].set(title="contact probability P(d < 8 Å)", xlabel="residue", ylabel="residue")
        ax[2].plot(np.arange(1, self.length + 1), pred.plddt, color="tab:blue")
        colours = {"H": "tab:red", "E": "tab:orange"}
        for i, s in enumerate(pred.ss):
            if s in colours:
                ax[2].axvspan(i + 0.5, i + 1.5, ymin=0, ymax=0.05, color=colours[s], lw=0)
        ax[2].set(ylim=(0, 100), xlabel="residue", ylabel="pLDDT", title="confidence; SS: red H, orange E")
        if self.reference:
            r = self.reference
            fig.suptitle(
                f"vs {r['reference']}: TM {r['tm_score']:.3f}  lDDT-Cα {r['lddt_ca']:.3f}  "
                f"RMSD {r['rmsd']:.2f} Å  GDT_TS {r['gdt_ts']:.3f}"
            )
        fig.tight_layout()
        return _figure_to_image(fig)


@dataclass(kw_only=True)
class VariantResult(Result):
    """Wild type vs mutant: per-residue Cα displacement (Å, after superposing all Cα) and confidence
    change (mutant minus wild type), with both structures."""

    id: str = ""
    mutations: list[str] = field(default_factory=list)
    displacement: list[float] = field(default_factory=list)
    delta_plddt: list[float] = field(default_factory=list)
    rmsd: float = 0.0
    tm_score: float = 0.0
    max_displacement: float = 0.0
    max_displacement_residue: int = 0
    mean_delta_plddt: float = 0.0
    ss_changes: list[int] = field(default_factory=list)  # 1-based positions whose SS state changed
    wild_type: StructureResult | None = None
    mutant: StructureResult | None = None

    def summary(self) -> str:
        return (
            f"{','.join(self.mutations) or 'no mutation'}: RMSD {self.rmsd:.2f} Å, max displacement "
            f"{self.max_displacement:.2f} Å at residue {self.max_displacement_residue}, mean ΔpLDDT "
            f"{self.mean_delta_plddt:+.2f}, SS changed at {len(self.ss_changes)} residue(s)"
        )

    def plot(self):
        plt = _pyplot()
        fig, ax = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
        pos = np.arange(1, len(self.displacement) + 1)
        ax[0].bar(pos, self.displacement, color="tab:purple", width=1.0)
        ax[0].set(ylabel="Cα displacement (Å)", title=f"{self.id}: {', '.join(self.mutations)}")
        ax[1].bar(
            pos,
            self.delta_plddt,
            color=np.where(np.array(self.delta_plddt) < 0, "tab:red", "tab:green"),
            width=1.0,
        )
        ax[1].set(ylabel="ΔpLDDT (mutant - WT)", xlabel="residue")
        for m in self.mutations:
            site = int(m[1:-1])
            for a in ax:
                a.axvline(site, color="k", ls="--", lw=0.8)
        fig.tight_layout()
        return _figure_to_image(fig)


def compare_predictions(
    rid: str, wt: StructureResult, mut: StructureResult, mutations: list[str]
) -> VariantResult:
    from .metrics import superpose, tm_score

    a, b = wt.prediction.ca, mut.prediction.ca
    moved = superpose(b, a)
    disp = np.linalg.norm(moved - a, axis=1)
    delta = np.asarray(mut.prediction.plddt) - np.asarray(wt.prediction.plddt)
    return VariantResult(
        id=rid,
        mutations=list(mutations),
        displacement=[round(float(v), 3) for v in disp],
        delta_plddt=[round(float(v), 2) for v in delta],
        rmsd=round(float(np.sqrt((disp**2).mean())), 3),
        tm_score=round(tm_score(b, a), 4),
        max_displacement=round(float(disp.max()), 3),
        max_displacement_residue=int(disp.argmax()) + 1,
        mean_delta_plddt=round(float(delta.mean()), 3),
        ss_changes=[i + 1 for i, (x, y) in enumerate(zip(wt.ss, mut.ss, strict=True)) if x != y],
        wild_type=wt,
        mutant=mut,
    )
