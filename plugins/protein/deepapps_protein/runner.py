"""The ``structure-prediction`` runner: inputs -> records -> predictions -> StructureResult / VariantResult.

An input is a sequence, FASTA text, a FASTA file (one result per record), or a PDB/mmCIF file (its
first protein chain, or ``chain``, is predicted and then scored against it). ``mutate`` turns each
record into a wild-type/mutant comparison. ``out`` writes one ``<record id>.pdb`` per prediction
(``<record id>_<mutations>.pdb`` for mutants), never overwriting a file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from deepapps import InputError, ModelNotAvailableError, ModelRef, Runner

from .prediction import Prediction
from .results import StructureResult, VariantResult, compare_predictions
from .sequences import (
    SequenceRecord,
    apply_mutations,
    clean_sequence,
    is_existing_file,
    is_structure_path,
    looks_like_path,
    parse_fasta,
    read_fasta,
)
from .structure_io import Chain, read_structure

TASK = "structure-prediction"


def read_input(item: Any, chain: str | None = None) -> tuple[list[SequenceRecord], Chain | None]:
    """The records an input holds, and the reference structure when it is a PDB/mmCIF file."""
    if isinstance(item, SequenceRecord):
        return [
            SequenceRecord(item.id, clean_sequence(item.sequence, f"record {item.id!r}"), item.description)
        ], None
    if isinstance(item, Chain):
        return [SequenceRecord(item.id, item.sequence)], item
    if not isinstance(item, (str, os.PathLike)):
        raise InputError(f"cannot read a {type(item).__name__}; give a sequence, FASTA text or a file path")
    text = os.fspath(item)
    path = Path(text).expanduser()
    if isinstance(item, os.PathLike) or looks_like_path(text) or is_existing_file(text):
        if not path.is_file():
            raise InputError(f"input {text}: file not found")
        if is_structure_path(path):
            ref = read_structure(path, chain)
            return [SequenceRecord(ref.id, ref.sequence, f"from {path.name}")], ref
        return read_fasta(path), None
    if text.lstrip().startswith(">"):
        return parse_fasta(text, where="FASTA text"), None
    return [SequenceRecord("query", clean_sequence(text, where="input sequence"))], None


def _free_path(folder: Path, stem: str) -> Path:
    target = folder / f"{stem}.pdb"
    n = 1
    while target.exists():
        target = folder / f"{stem}-{n}.pdb"
        n += 1
    return target


class StructureRunner(Runner):
    """``runner("MKTAYIAKQR...")`` -> StructureResult; a FASTA file gives a list, one per record."""

    task = TASK

    def __init__(self, backend: Any, model_name: str, device: str = "cpu", precision: str = "fp32") -> None:
        super().__init__(model_name, device, precision)
        self.backend = backend

    def predict_sequence(self, sequence: str, refine_steps: int, recycles: int | None) -> Prediction:
        """One checked sequence through the backend (each backend ignores the other's option)."""
        return self.backend.predict(sequence, refine_steps=refine_steps, recycles=recycles)

    def __call__(
        self,
        inputs: Any,
        mutate: list[str] | None,
        chain: str | None,
        out: Path | None,
        refine_steps: int,
        recycles: int | None,
    ):
        items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        results: list = []
        for item in items:
            results += self._run_item(item, mutate, chain, out, refine_steps, recycles)
        single = not isinstance(inputs, (list, tuple)) and len(results) == 1
        return results[0] if single else results

    def _run_item(self, item, mutate, chain, out, refine_steps, recycles) -> list:
        t0 = time.perf_counter()
        records, reference = read_input(item, chain)
        mutated = (
            [apply_mutations(r.sequence, mutate) for r in records] if mutate else None
        )  # check all first
        read_ms = (time.perf_counter() - t0) * 1e3
        results = []
        for k, record in enumerate(records):
            started = time.perf_counter()
            wt = self._structure(record.id, record.sequence, reference, refine_steps, recycles)
            stages = {"read": read_ms if k == 0 else 0.0, **wt.timings}
            result: StructureResult | VariantResult = wt
            if mutated:
                seq, muts = mutated[k]
                tag = "_".join(str(m) for m in muts)
                mut = self._structure(f"{record.id}_{tag}", seq, None, refine_steps, recycles)
                result = compare_predictions(record.id, wt, mut, [str(m) for m in muts])
                stages["predict_mutant"] = mut.timings["predict"]
            if out is not None:
                self._write(result, Path(out), record)
            result.source = record.safe_id if not mutated else f"{record.safe_id}_{tag}"
            wt.timings = {}
            results.append(self.finish(result, item, stages, started=started))
        return results

    def _structure(
        self, rid: str, sequence: str, reference: Chain | None, refine_steps, recycles
    ) -> StructureResult:
        from .scoring import score

        t0 = time.perf_counter()
        pred = self.predict_sequence(sequence, refine_steps, recycles)
        t1 = time.perf_counter()
        scores = score(pred, reference) if reference is not None else None
        result = StructureResult.from_prediction(rid, pred, scores)
        result.task, result.model = self.task, self.model_name
        result.timings = {"predict": (t1 - t0) * 1e3, "score": (time.perf_counter() - t1) * 1e3}
        return result

    def _write(self, result, folder: Path, record: SequenceRecord) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if isinstance(result, VariantResult):
            result.wild_type.save_pdb(_free_path(folder, record.safe_id))
            tag = "_".join(result.mutations)
            result.mutant.save_pdb(_free_path(folder, f"{record.safe_id}_{tag}"))
        else:
            result.save_pdb(_free_path(folder, record.safe_id))

    def compare(self, seq_wt: str, seq_mut: str, refine_steps: int, recycles: int | None) -> VariantResult:
        """Predict both sequences (equal length) and compare them residue by residue."""
        wt_seq = clean_sequence(seq_wt, "wild-type sequence")
        mut_seq = clean_sequence(seq_mut, "mutant sequence")
        if len(wt_seq) != len(mut_seq):
            raise InputError(
                f"compare needs sequences of equal length (point mutations); got "
                f"{len(wt_seq)} and {len(mut_seq)} residues"
            )
        muts = [f"{a}{i + 1}{b}" for i, (a, b) in enumerate(zip(wt_seq, mut_seq, strict=True)) if a != b]
        started = time.perf_counter()
        wt = self._structure("wild_type", wt_seq, None, refine_steps, recycles)
        mut = self._structure("mutant", mut_seq, None, refine_steps, recycles)
        result = compare_predictions("wild_type", wt, mut, muts)
        result.source = "compare"
        return self.finish(
            result,
            "compare",
            {"predict": wt.timings["predict"], "predict_mutant": mut.timings["predict"]},
            started=started,
        )


def load_backend(model: ModelRef, device: str, chunk_size: int | None):
    """The backend a model reference points at: an ESMFold folder or a protein-fold-small checkpoint."""
    from .esmfold import ESMFold, is_esmfold_dir
    from .small_model import is_small_model_file, load_model

    path = Path(model.path)
    if is_esmfold_dir(path):
        return ESMFold.load(path, device, chunk_size=chunk_size)
    if is_small_model_file(path):
        return load_model(path, device)
    raise ModelNotAvailableError(
        f"{model.name}: not a structure-prediction model; pass an ESMFold folder (config.json with "
        "is_folding_model) or a protein-fold-small .safetensors checkpoint"
    )


def make_runner(model: ModelRef, device: str, precision: str, chunk_size: int | None) -> StructureRunner:
    """Runner factory registered in the TaskSpec."""
    return StructureRunner(load_backend(model, device, chunk_size), model.name, device, precision)
