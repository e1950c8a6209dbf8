"""`deepapps run|eval|train structure-prediction` smoke tests (small limits), in process."""

from __future__ import annotations

import json

from click.testing import CliRunner

from deepapps.cli import cli

SEQ = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"


def invoke(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def test_run_fasta_writes_one_pdb_and_one_png_per_record(tmp_path):
    fasta = tmp_path / "in.fasta"
    fasta.write_text(f">sp|P0CG48|UBQ\n{SEQ}\n>short\n{SEQ[:25]}\n")
    out = invoke(
        "run",
        "structure-prediction",
        fasta,
        "--out",
        tmp_path / "pdb",
        "--save",
        tmp_path / "png",
        "--refine-steps",
        "50",
        "--json",
    )
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    assert [r["id"] for r in rows] == ["sp|P0CG48|UBQ", "short"]
    assert sorted(p.name for p in (tmp_path / "pdb").iterdir()) == ["short.pdb", "sp_P0CG48_UBQ.pdb"]
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == ["short.png", "sp_P0CG48_UBQ.png"]
    assert rows[0]["pdb_path"].endswith("sp_P0CG48_UBQ.pdb")


def test_run_mutate_reports_displacement(tmp_path):
    out = invoke("run", "structure-prediction", SEQ, "--mutate", "I3A,V5A", "--refine-steps", "50", "--json")
    assert out.exit_code == 0, out.output
    (row,) = json.loads(out.stdout)
    assert row["mutations"] == ["I3A", "V5A"] and len(row["displacement"]) == len(SEQ)
    assert row["source"] == "query_I3A_V5A"


def test_bad_inputs_fail_before_loading_with_one_line():
    out = invoke("run", "structure-prediction", "MKTAY1Z")
    assert out.exit_code != 0
    assert "'1' at 6, 'Z' at 7" in out.output and "Traceback" not in out.output
    out = invoke("run", "structure-prediction", SEQ, "--mutate", "W3A")
    assert out.exit_code != 0 and "residue 3 is I, not W" in out.output
    out = invoke("run", "structure-prediction", SEQ, "--refine-step", "3")
    assert out.exit_code != 0 and "did you mean --refine-steps" in out.output


def test_eval_reports_the_model_and_every_baseline():
    out = invoke("eval", "structure-prediction", "--limit", "1", "--refine-steps", "50", "--json")
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["n"] == 1 and report["split"] == "test" and report["dataset"] == "pdb-chains"
    keys = {"tm_score", "lddt_ca", "rmsd", "gdt_ts", "tm_align", "q3", "contact_precision_long_l5"}
    metrics = report["metrics"]
    assert keys <= set(metrics) and {"plddt_lddt_pearson", "plddt_lddt_mae"} <= set(metrics)
    assert set(metrics["baselines"]) == {"ideal-helix", "random-walk", "fragment-ss"}
    for row in metrics["baselines"].values():
        assert keys == set(row)
    assert metrics["baselines"]["ideal-helix"]["rmsd"] > 10


def test_train_one_epoch_of_cross_validation(tmp_path):
    out = invoke(
        "train",
        "structure-prediction",
        "--epochs",
        "1",
        "--fold",
        "0",
        "--no-pair",
        "--no-extra",
        "--out",
        tmp_path,
        "--json",
    )
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)
    assert summary["held_out"] == "fold-0" and summary["train_chains"] == 40
    assert 0.2 < summary["fold-0_q3"] < 1.0
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 1 and (tmp_path / "training.png").exists()
    assert "checkpoint" not in summary  # cross-validation runs report, they do not ship a model
