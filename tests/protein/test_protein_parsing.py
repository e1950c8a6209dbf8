"""Reading PDB (plain, gzip), mmCIF and FASTA; writing PDB with confidence in the B-factor column."""

from __future__ import annotations

import numpy as np
import pytest

from deepapps import InputError
from deepapps_protein.data import data_dir
from deepapps_protein.sequences import parse_fasta, read_fasta
from deepapps_protein.structure_io import pdb_text, read_structure


def test_pdb_gz_and_mmcif_give_sequence_coordinates_and_backbone():
    chain = read_structure(data_dir() / "dssp" / "1ahsA.pdb.gz")
    assert len(chain) == 126 and chain.sequence.startswith("TGPYAGAVEV")
    assert chain.backbone.shape == (126, 4, 3)
    assert np.allclose(chain.backbone[:, 1], chain.ca)
    bpti = read_structure(data_dir() / "mmcif" / "5PTI.cif.gz")
    assert bpti.sequence == "RPDFCLEPPYTGPCKARIIRYFYNAKAGLCQTFVYGGCRAKRNNFKSAEDCMRTCGGA"
    ss = bpti.secondary_structure()
    assert len(ss) == 58 and "EEEEEEE" in ss and "HHHH" in ss


def test_charmm_terminal_oxygen_counts_as_backbone_and_chain_choice():
    adk = read_structure(data_dir() / "adk_open.pdb")
    assert adk.backbone is not None and len(adk) == 214
    with pytest.raises(InputError, match="no protein chain 'Z'"):
        read_structure(data_dir() / "adk_open.pdb", chain="Z")


def test_written_pdb_reads_back_with_confidence_in_b_factors(tmp_path):
    import biotite.structure.io.pdb as pdb

    seq = "MKTAYW"
    ca = np.arange(18, dtype=float).reshape(6, 3) * 1.5
    plddt = np.array([10, 20, 30, 40, 50, 99.5])
    path = tmp_path / "x.pdb"
    path.write_text(pdb_text(seq, ca, plddt))
    back = read_structure(path)
    assert back.sequence == seq and np.allclose(back.ca, ca, atol=1e-3)
    atoms = pdb.PDBFile.read(str(path)).get_structure(model=1, extra_fields=["b_factor"])
    assert np.allclose(atoms.b_factor, plddt)
    backbone = np.stack([ca + k for k in range(4)], axis=1)
    full = tmp_path / "y.pdb"
    full.write_text(pdb_text(seq, ca + 1, plddt, backbone=backbone))
    assert read_structure(full).backbone.shape == (6, 4, 3)


def test_fasta_records_and_their_errors(tmp_path):
    records = parse_fasta(">sp|P1|ONE first protein\nMKTA\nYIAK\n\n>two\nmqifv k*\n")
    assert [(r.id, r.sequence) for r in records] == [("sp|P1|ONE", "MKTAYIAK"), ("two", "MQIFVK")]
    assert records[0].safe_id == "sp_P1_ONE" and records[0].description == "first protein"
    with pytest.raises(InputError, match="before the first '>' header"):
        parse_fasta("MKTAYIAK\n>x\nMKT")
    with pytest.raises(InputError, match="holds no records"):
        parse_fasta("\n\n")
    with pytest.raises(InputError, match=r"record 'bad'.*'1' at 4"):
        parse_fasta(">bad\nMKT1A")
    binary = tmp_path / "b.fasta"
    binary.write_bytes(b"\x00\x01\x02>x")
    with pytest.raises(InputError, match="binary file"):
        read_fasta(binary)


def test_malformed_structure_files_give_one_line_errors(tmp_path):
    cases = {
        "empty.pdb": "",
        "junk.pdb": "ATOM      1  CA  ALA A   1      xx.xxx  10.000  10.000  1.00  0.00           C\n",
        "water.pdb": "HETATM    1  O   HOH A   1      10.000  10.000  10.000  1.00  0.00           O\nEND\n",
        "broken.cif": "data_x\nloop_\n_atom_site.id\n_atom_site.Cartn_x\n1\n",
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(InputError) as err:
            read_structure(path)
        message = str(err.value)
        assert name in message and "\n" not in message
    gz = tmp_path / "fake.pdb.gz"
    gz.write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(InputError, match="not a valid gzip"):
        read_structure(gz)
