"""``deepapps eval structure-prediction``: the model and three baselines on the same held-out chains.

Baselines (geometry.py): ``ideal-helix``, ``random-walk`` (3.8 Å steps, seeded per chain), and
``fragment-ss`` (ideal fragments templated on the evaluated model's own predicted secondary
structure). Each predictor is scored on every chain (scoring.py); the report gives the mean over
chains of TM-score, lDDT-Cα, RMSD, GDT_TS, TM-align and long-range contact precision, and Q3 over
all residues. For the model it also gives how well its confidence tracks the true per-residue
lDDT-Cα: Pearson r over all residues pooled, the mean of the per-chain r (within each chain), the
r between each chain's mean pLDDT and its global lDDT-Cα (across chains), and the mean absolute
error (pLDDT/100 vs lDDT).
"""

from __future__ import annotations

import time

import numpy as np

import deepapps
from deepapps import EvalReport, InputError, ModelRef

from .data import DATASET, load_pdb_chains
from .geometry import chain_seed, fragment_build, ideal_helix, random_walk
from .metrics import lddt_per_residue
from .prediction import Prediction
from .scoring import score

TASK = "structure-prediction"
BASELINES = ("ideal-helix", "random-walk", "fragment-ss")
MEAN_KEYS = ("tm_score", "lddt_ca", "rmsd", "gdt_ts", "tm_align", "contact_precision_long_l5")


def baseline_prediction(kind: str, sequence: str, model_ss: str, name: str, seed: int) -> Prediction:
    """A baseline's structure as a Prediction; its contact map ranks pairs by their distance in it."""
    length = len(sequence)
    if kind == "ideal-helix":
        ca, ss = ideal_helix(length), "H" * length
    elif kind == "random-walk":
        ca, ss = random_walk(length, chain_seed(seed, name)), "-" * length
    elif kind == "fragment-ss":
        ca, ss = fragment_build(model_ss, chain_seed(seed, name)), model_ss
    else:
        raise ValueError(f"unknown baseline {kind!r}")
    dist = np.linalg.norm(ca[:, None] - ca[None], axis=-1)
    contacts = (dist < 8.0).astype(float) - 1e-3 * dist  # ties broken by distance
    return Prediction(
        sequence=sequence, ca=ca, plddt=np.zeros(length), ss=ss, contacts=contacts, distances=dist
    )


def _summarise(rows: list[dict], residues: list[int]) -> dict[str, float]:
    out = {k: round(float(np.nanmean([r[k] for r in rows])), 4) for k in MEAN_KEYS}
    out["q3"] = round(
        float(np.sum([r["q3"] * n for r, n in zip(rows, residues, strict=True)]) / np.sum(residues)), 4
    )
    return out


def _pearson(x, y) -> float | None:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return None
    return round(float(np.corrcoef(x, y)[0, 1]), 4)


def confidence_agreement(conf: list, truth: list, chain_lddt: list) -> dict:
    """How well per-residue confidence (0-1) tracks per-residue lDDT-Cα: pooled, within chains, across chains."""
    x, y = np.concatenate(conf), np.concatenate(truth)
    within = [r for r in (_pearson(c, t) for c, t in zip(conf, truth, strict=True)) if r is not None]
    return {
        "plddt_lddt_pearson": _pearson(x, y),
        "plddt_lddt_pearson_within_chain": round(float(np.mean(within)), 4) if within else None,
        "plddt_lddt_pearson_across_chains": _pearson([c.mean() for c in conf], chain_lddt),
        "plddt_lddt_mae": round(float(np.abs(x - y).mean()), 4),
    }


def evaluate(
    model: ModelRef,
    dataset: str | None,
    split: str,
    limit: int | None,
    device: str,
    precision: str,
    seed: int,
    refine_steps: int,
    threads: int,
) -> EvalReport:
    """Score the model and every baseline on ``split`` of pdb-chains (see the module docstring)."""
    from deepapps.runtime import set_threads

    if dataset not in (None, DATASET):
        raise InputError(f"structure-prediction evaluates on the {DATASET} dataset only, not {dataset!r}")
    set_threads(threads)
    t0 = time.perf_counter()
    chains = load_pdb_chains(split, limit)
    runner = deepapps.load(TASK, model, device=device, precision=precision)
    rows: dict[str, list[dict]] = {"model": [], **{b: [] for b in BASELINES}}
    conf, truth, per_chain = [], [], []
    for c in chains:
        pred = runner.predict_sequence(c.sequence, refine_steps, None)
        rows["model"].append(score(pred, c.chain, reference_ss=c.ss))
        conf.append(pred.plddt / 100.0)
        truth.append(lddt_per_residue(pred.ca, c.ca))
        for b in BASELINES:
            rows[b].append(
                score(baseline_prediction(b, c.sequence, pred.ss, c.id, seed), c.chain, reference_ss=c.ss)
            )
        per_chain.append(
            {
                "chain": c.id,
                "length": len(c),
                "tm_score": rows["model"][-1]["tm_score"],
                "lddt_ca": rows["model"][-1]["lddt_ca"],
                "q3": rows["model"][-1]["q3"],
                "random_walk_tm": rows["random-walk"][-1]["tm_score"],
            }
        )
    residues = [len(c) for c in chains]
    metrics = _summarise(rows["model"], residues)
    metrics.update(confidence_agreement(conf, truth, [r["lddt_ca"] for r in rows["model"]]))
    metrics["baselines"] = {b: _summarise(rows[b], residues) for b in BASELINES}
    return EvalReport(
        task=TASK,
        model=model.name,
        dataset=DATASET,
        split=split,
        n=len(chains),
        metrics=metrics,
        seconds=time.perf_counter() - t0,
        extra={
            "residues": int(np.sum(residues)),
            "per_chain": per_chain,
            "baseline_seed": seed,
            "refine_steps": refine_steps,
        },
    )
