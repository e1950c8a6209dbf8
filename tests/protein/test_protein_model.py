"""The bundled protein-fold-small model: quality against the random walk, results, PDB output, variants."""

from __future__ import annotations

import json

import numpy as np
import pytest

import deepapps
from deepapps import InputError
from deepapps_protein import compare
from deepapps_protein.data import data_dir, load_pdb_chains
from deepapps_protein.evaluate import baseline_prediction
from deepapps_protein.results import StructureResult, VariantResult
from deepapps_protein.scoring import score
from deepapps_protein.structure_io import read_structure

TASK = "structure-prediction"
FAST = 50  # refinement steps where a test checks plumbing, not quality
SEQ = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"


@pytest.fixture(scope="module")
def runner():
    return deepapps.load(TASK, device="cpu")


def test_bundled_model_beats_the_random_walk_on_test_chains(runner):
    chains = load_pdb_chains("test", limit=2)
    model, walk = [], []
    for c in chains:
        pred = runner.predict_sequence(c.sequence, 300, None)
        model.append(score(pred, c.chain, reference_ss=c.ss))
        walk.append(
            score(
                baseline_prediction("random-walk", c.sequence, pred.ss, c.id, 0), c.chain, reference_ss=c.ss
            )
        )
    assert np.mean([m["tm_score"] for m in model]) > np.mean([w["tm_score"] for w in walk])
    assert np.mean([m["q3"] for m in model]) > 0.45  # the majority class (coil) gets about 0.40
    # the bundled model's figures on these two chains (deepapps eval structure-prediction --json, per_chain)
    assert [c.id for c in chains] == ["1eteA", "1y1lA"]
    assert [m["tm_score"] for m in model] == pytest.approx([0.1944, 0.222], abs=2e-3)
    assert [m["q3"] for m in model] == pytest.approx([0.6642, 0.6694], abs=1e-3)


def test_result_json_plot_and_pdb(runner, tmp_path):
    result = runner(SEQ)
    assert isinstance(result, StructureResult) and result.source == "query" and result.id == "query"
    assert result.length == len(SEQ) == len(result.ss) == len(result.plddt) == len(result.ca)
    assert all(0 <= p <= 100 for p in result.plddt) and result.backbone_atoms == "CA"
    bonds = np.linalg.norm(np.diff(np.asarray(result.ca), axis=0), axis=1)
    assert abs(bonds.mean() - 3.8) < 0.2
    data = json.loads(result.to_json())
    assert "prediction" not in data and data["reference"] is None
    assert set(result.timings) >= {"load", "read", "predict", "score", "total"}
    image = result.plot()
    assert image.size[0] > 600 and image.mode == "RGB"
    path = result.save_pdb(tmp_path / "ubq.pdb")
    back = read_structure(path)
    assert back.sequence == SEQ and np.allclose(back.ca, result.ca, atol=2e-3)
    b_factors = [float(line[60:66]) for line in path.read_text().splitlines() if line.startswith("ATOM")]
    assert np.allclose(b_factors, result.plddt, atol=0.06)
    assert np.allclose(runner(SEQ).ca, result.ca)  # deterministic


def test_a_structure_input_is_predicted_and_scored_against_itself(runner):
    chain_file = data_dir() / "dssp" / "3vjzA.pdb.gz"
    result = runner(str(chain_file), refine_steps=FAST)
    ref = result.reference
    assert (
        ref["reference"] == "3vjzA_A"
        and result.id == "3vjzA_A"
        and ref["matched_residues"] == result.length
        and ref["identity"] == 1.0
    )
    assert 0 < ref["tm_score"] <= 1 and 0 <= ref["lddt_ca"] <= 1 and ref["rmsd"] > 0
    assert 0 <= ref["q3"] <= 1 and 0 <= ref["tm_align"] <= 1


def test_variants_report_displacement_and_confidence_change(runner):
    same = compare(SEQ, SEQ, device="cpu", refine_steps=FAST)
    assert isinstance(same, VariantResult) and same.mutations == []
    assert max(same.displacement) < 1e-6 and max(abs(d) for d in same.delta_plddt) < 1e-6
    mutant = SEQ[:40] + "P" + SEQ[41:]
    variant = compare(SEQ, mutant, device="cpu", refine_steps=FAST)
    assert variant.mutations == [f"{SEQ[40]}41P"] and len(variant.displacement) == len(SEQ)
    assert variant.max_displacement == pytest.approx(max(variant.displacement))
    assert variant.wild_type.sequence == SEQ and variant.mutant.sequence == mutant
    via_run = runner(SEQ, mutate=[f"{SEQ[40]}41P"], refine_steps=FAST)
    assert isinstance(via_run, VariantResult) and via_run.source == f"query_{SEQ[40]}41P"
    assert np.allclose(via_run.displacement, variant.displacement)
    assert via_run.plot().size[0] > 0
    with pytest.raises(InputError, match="residue 41 is"):
        runner(SEQ, mutate=["W41P"])
    with pytest.raises(InputError, match="equal length"):
        compare(SEQ, SEQ[:-1], device="cpu", refine_steps=FAST)


def test_fasta_gives_one_result_per_record(runner, tmp_path):
    fasta = tmp_path / "two.fasta"
    fasta.write_text(f">ubq ubiquitin\n{SEQ}\n>frag\n{SEQ[:30]}\n")
    results = runner(str(fasta), out=tmp_path / "pdbs", refine_steps=FAST)
    assert [r.id for r in results] == ["ubq", "frag"] and [r.length for r in results] == [len(SEQ), 30]
    assert sorted(p.name for p in (tmp_path / "pdbs").iterdir()) == ["frag.pdb", "ubq.pdb"]
    runner(str(fasta), out=tmp_path / "pdbs", refine_steps=FAST)  # never overwrites
    assert sorted(p.name for p in (tmp_path / "pdbs").iterdir()) == [
        "frag-1.pdb",
        "frag.pdb",
        "ubq-1.pdb",
        "ubq.pdb",
    ]


def test_bundled_model_ships_small_with_a_card_and_declared_defaults_agree():
    from deepapps_protein import fold, plugin, train

    spec = deepapps.registry.model("protein-fold-small")
    path = deepapps.resolve_model(TASK, "protein-fold-small").path
    assert path.stat().st_size < 10 * 1024 * 1024
    assert spec.card.training_command == "deepapps train structure-prediction --out runs/protein"
    assert spec.card.metrics_command
    # the bundled network is the default recipe (the one whose 5-fold CV Q3 is reported)
    from deepapps.runtime.checkpoint import read_metadata

    record = read_metadata(path)["training"]
    assert (record["train_chains"], record["extra_chains"], record["epochs"], record["seed"]) == (
        154,
        True,
        15,
        0,
    )
    assert record["val_q3"] == pytest.approx(0.6821) and record["calibration_residues"] == 777
    assert spec.card.metrics["q3"] == pytest.approx(0.6402) and spec.card.metrics["q3_5fold_cv"] >= 0.65
    assert plugin.REFINE_STEPS == fold.REFINE_STEPS
    opts = {o.name: o.default for o in deepapps.registry.task(TASK).train_options}
    assert (opts["epochs"], opts["lr"], opts["seed"], opts["crop"], opts["threads"]) == (
        train.TRAIN_EPOCHS,
        train.TRAIN_LR,
        train.TRAIN_SEED,
        train.TRAIN_CROP,
        train.TRAIN_THREADS,
    )
