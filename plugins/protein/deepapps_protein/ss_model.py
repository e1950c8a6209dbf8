"""The ``secondary-structure`` task: 3-state secondary structure from sequence.

Default model ``predictdssp``: the network of PredictDSSP 1.3.1 (MIT licence, Emenecker & Holehouse
lab), a PARROT bidirectional LSTM (2 layers, hidden size 20, one-hot input) trained by its authors
on DSSP of 74,777 sequences (their reported held-out accuracy: 74.0%). Its weight file is fetched
from the PredictDSSP wheel by ``deepapps pull predictdssp`` (the package is never installed: it
depends on several unrelated packages) and read with ``torch.load(weights_only=True)``; the network
class here is our own, with the same layer names and sizes. Its training set is not published per
chain, so some pdb-chains test chains may have been in it: its Q3 here is not a held-out figure.

Evaluation also reports the majority class (coil) and the bundled ``protein-fold-small`` SS head
on the same residues.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import deepapps
from deepapps import EvalReport, InputError, ModelNotAvailableError, ModelRef, Result, Runner

from .data import DATASET, load_pdb_chains
from .features import SS_STATES
from .metrics import q3
from .sequences import AMINO_ACIDS

TASK = "secondary-structure"
PREFIX = "module."


def _build_brnn(hidden: int, layers: int, classes: int):
    import torch
    from torch import nn

    class BRNN(nn.Module):
        """Bidirectional LSTM over one-hot residues, a linear layer per position."""

        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(len(AMINO_ACIDS), hidden, layers, batch_first=True, bidirectional=True)
            self.fc = nn.Linear(2 * hidden, classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out, _ = self.lstm(x)
            return self.fc(out)

    return BRNN()


def load_brnn(path: str | Path, device: str = "cpu"):
    """The BRNN from a PARROT state dict (``.pt``, read with weights_only=True)."""
    from deepapps.runtime import load_torch_file

    state = load_torch_file(path)
    if not isinstance(state, dict) or not any(k.endswith("lstm.weight_ih_l0") for k in state):
        raise ModelNotAvailableError(f"{path} is not a PARROT BRNN state dict (no lstm.weight_ih_l0)")
    state = {k.removeprefix(PREFIX): v for k, v in state.items()}
    layers = sum(1 for k in state if k.startswith("lstm.weight_ih_l") and not k.endswith("_reverse"))
    hidden = state["lstm.weight_hh_l0"].shape[1]
    classes = state["fc.bias"].shape[0]
    net = _build_brnn(hidden, layers, classes)
    net.load_state_dict(state)
    return net.eval().to(device)


def one_hot(sequence: str) -> np.ndarray:
    """L x 20; X (unknown) is all zeros."""
    out = np.zeros((len(sequence), len(AMINO_ACIDS)), dtype=np.float32)
    for i, c in enumerate(sequence):
        if c in AMINO_ACIDS:
            out[i, AMINO_ACIDS.index(c)] = 1.0
    return out


@dataclass(kw_only=True)
class SecondaryStructureResult(Result):
    """3-state secondary structure (H helix, E strand, - coil) and its per-residue probabilities."""

    id: str = ""
    sequence: str = ""
    ss: str = ""
    probabilities: list[list[float]] = field(default_factory=list)  # per residue: P(H), P(E), P(coil)
    q3: float | None = None  # against the input structure's DSSP, when the input was a PDB/mmCIF file

    def summary(self) -> str:
        extra = f" (Q3 {self.q3:.3f} vs the input structure)" if self.q3 is not None else ""
        return f"{self.id}: {self.ss}{extra}"

    def plot(self):
        from .results import _figure_to_image, _pyplot

        plt = _pyplot()
        p = np.asarray(self.probabilities)
        fig, ax = plt.subplots(figsize=(10, 2.6))
        x = np.arange(1, len(p) + 1)
        for k, (label, colour) in enumerate(
            zip(("helix", "strand", "coil"), ("tab:red", "tab:orange", "0.5"), strict=True)
        ):
            ax.plot(x, p[:, k], label=label, color=colour)
        ax.set(ylim=(0, 1), xlabel="residue", ylabel="probability", title=f"{self.id}: secondary structure")
        ax.legend(loc="upper right", ncol=3)
        fig.tight_layout()
        return _figure_to_image(fig)


class SecondaryStructureRunner(Runner):
    task = TASK

    def __init__(self, net: Any, model_name: str, device: str = "cpu", precision: str = "fp32") -> None:
        super().__init__(model_name, device, precision)
        self.net = net

    def probabilities(self, sequence: str) -> np.ndarray:
        import torch

        x = torch.from_numpy(one_hot(sequence))[None].to(self.device)
        with torch.inference_mode():
            return self.net(x)[0].softmax(-1).float().cpu().numpy().astype(np.float64)

    def __call__(self, inputs: Any, chain: str | None):
        from .runner import read_input

        items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        results = []
        for item in items:
            started = time.perf_counter()
            records, reference = read_input(item, chain)
            for record in records:
                probs = self.probabilities(record.sequence)
                ss = "".join(SS_STATES[k] for k in probs.argmax(1))
                ref_ss = reference.secondary_structure() if reference is not None else None
                result = SecondaryStructureResult(
                    id=record.id,
                    sequence=record.sequence,
                    ss=ss,
                    probabilities=np.round(probs, 4).tolist(),
                    q3=round(q3(ss, ref_ss), 4) if ref_ss else None,
                    source=record.safe_id,
                )
                results.append(self.finish(result, item, {}, started=started))
        single = not isinstance(inputs, (list, tuple)) and len(results) == 1
        return results[0] if single else results


def make_runner(model: ModelRef, device: str, precision: str) -> SecondaryStructureRunner:
    path = Path(model.path)
    if path.suffix not in (".pt", ".pth"):
        raise ModelNotAvailableError(
            f"{model.name}: secondary-structure models are PARROT BRNN .pt state dicts"
        )
    return SecondaryStructureRunner(load_brnn(path, device), model.name, device, precision)


def evaluate(
    model: ModelRef,
    dataset: str | None,
    split: str,
    limit: int | None,
    device: str,
    precision: str,
    compare_with: str | None,
) -> EvalReport:
    """Q3 on ``split`` of pdb-chains, beside the majority class and ``compare_with``'s SS head."""
    if dataset not in (None, DATASET):
        raise InputError(f"secondary-structure evaluates on the {DATASET} dataset only, not {dataset!r}")
    t0 = time.perf_counter()
    chains = load_pdb_chains(split, limit)
    runner = deepapps.load(TASK, model, device=device, precision=precision)
    truth = "".join(c.ss for c in chains)
    ours = "".join("".join(SS_STATES[k] for k in runner.probabilities(c.sequence).argmax(1)) for c in chains)
    metrics: dict[str, Any] = {
        "q3": round(q3(ours, truth), 4),
        "baselines": {"majority-coil": round(q3("-" * len(truth), truth), 4)},
    }
    if compare_with:
        other = deepapps.load(
            "structure-prediction",
            deepapps.resolve_model("structure-prediction", compare_with),
            device=device,
            precision=precision,
        )
        theirs = "".join(
            "".join(SS_STATES[k] for k in other.backend.network_outputs(c.sequence)[0].argmax(1))
            for c in chains
        )
        metrics["baselines"][compare_with] = round(q3(theirs, truth), 4)
    return EvalReport(
        task=TASK,
        model=model.name,
        dataset=DATASET,
        split=split,
        n=len(chains),
        metrics=metrics,
        seconds=time.perf_counter() - t0,
        extra={"residues": len(truth)},
    )
