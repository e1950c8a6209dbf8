"""Leak-free splits of ``pdb-chains`` by sequence identity: ``python -m deepapps_protein.splits``.

Method (recorded in ``data/splits.json``):

1. Every pair of chains is aligned globally (Needleman-Wunsch with affine gaps, as implemented by
   biotite's ``align_optimal``: BLOSUM62, gap open -10, extend -1, end gaps free).
2. Identity = identical aligned residue pairs / length of the shorter chain.
3. Chains are clustered by single linkage at identity > 30%: two chains closer than that, or
   linked through a chain of such pairs, always land in the same split and the same fold.
4. Clusters are ordered by the SHA-1 of their sorted member ids (a fixed, arbitrary order) and dealt
   out: the first ones to ``test`` until it holds ``TEST_SIZE`` chains, then ``val`` (``VAL_SIZE``),
   the rest to ``train``; for cross-validation each cluster, in the same order, goes to the fold
   holding the fewest chains so far.

``check_leakage`` re-checks a split table against the identity matrix (the test suite calls it).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import numpy as np

IDENTITY_THRESHOLD = 0.30
TEST_SIZE, VAL_SIZE = 10, 6
GAP_PENALTY = (-10, -1)


def identity(a: str, b: str) -> float:
    """Sequence identity of the optimal global alignment, over the shorter sequence's length."""
    import biotite.sequence as bseq
    import biotite.sequence.align as align

    matrix = align.SubstitutionMatrix.std_protein_matrix()
    alignment = align.align_optimal(
        bseq.ProteinSequence(a),
        bseq.ProteinSequence(b),
        matrix,
        gap_penalty=GAP_PENALTY,
        terminal_penalty=False,
        max_number=1,
    )[0]
    trace = alignment.trace
    both = (trace >= 0).all(axis=1)
    same = sum(a[i] == b[j] for i, j in trace[both])
    return same / min(len(a), len(b))


def identity_matrix(sequences: dict[str, str]) -> tuple[list[str], np.ndarray]:
    names = sorted(sequences)
    ident = np.eye(len(names))
    for (i, a), (j, b) in itertools.combinations(enumerate(names), 2):
        ident[i, j] = ident[j, i] = identity(sequences[a], sequences[b])
    return names, ident


def clusters(names: list[str], ident: np.ndarray, threshold: float = IDENTITY_THRESHOLD) -> list[list[str]]:
    """Single-linkage clusters: connected components of the graph of pairs above ``threshold``."""
    parent = list(range(len(names)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(ident > threshold, k=1)), strict=True):
        parent[root(int(i))] = root(int(j))
    groups: dict[int, list[str]] = {}
    for i, name in enumerate(names):
        groups.setdefault(root(i), []).append(name)
    return sorted((sorted(g) for g in groups.values()), key=_cluster_key)


def _cluster_key(members: list[str]) -> str:
    return hashlib.sha1(",".join(sorted(members)).encode()).hexdigest()


def assign(groups: list[list[str]], n_folds: int = 5) -> tuple[dict[str, list[str]], list[list[str]]]:
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for members in groups:
        if len(splits["test"]) < TEST_SIZE:
            splits["test"] += members
        elif len(splits["val"]) < VAL_SIZE:
            splits["val"] += members
        else:
            splits["train"] += members
    folds: list[list[str]] = [[] for _ in range(n_folds)]
    for members in groups:
        min(folds, key=len).extend(members)
    return {k: sorted(v) for k, v in splits.items()}, [sorted(f) for f in folds]


def check_leakage(
    groups_of_ids: list[list[str]], names: list[str], ident: np.ndarray, threshold: float = IDENTITY_THRESHOLD
) -> float:
    """The highest identity between chains of two different groups; raises if any is > threshold
    or a chain is in two groups."""
    seen: dict[str, int] = {}
    for g, ids in enumerate(groups_of_ids):
        for cid in ids:
            if cid in seen:
                raise AssertionError(f"chain {cid} is in two groups ({seen[cid]} and {g})")
            seen[cid] = g
    index = {n: i for i, n in enumerate(names)}
    worst = 0.0
    for a, b in itertools.combinations(sorted(seen), 2):
        if seen[a] != seen[b]:
            value = float(ident[index[a], index[b]])
            if value > threshold:
                raise AssertionError(f"{a} and {b} are {value:.0%} identical but in different groups")
            worst = max(worst, value)
    return worst


def build() -> dict:
    from .data import N_FOLDS, chain_files
    from .structure_io import read_structure

    sequences = {cid: read_structure(pdb).sequence for cid, (pdb, _) in chain_files().items()}
    names, ident = identity_matrix(sequences)
    groups = clusters(names, ident)
    splits, folds = assign(groups, N_FOLDS)
    return {
        "dataset": "pdb-chains",
        "source": "mdanalysistests 2.11.0, MDAnalysisTests/data/dssp (<id>.pdb.gz + <id>.pdb.dssp)",
        "method": {
            "alignment": "global Needleman-Wunsch with affine gaps (biotite align_optimal), BLOSUM62, "
            f"gap open {GAP_PENALTY[0]}, extend {GAP_PENALTY[1]}, end gaps free",
            "identity": "identical aligned pairs / length of the shorter chain",
            "clustering": f"single linkage at identity > {IDENTITY_THRESHOLD:.0%}",
            "assignment": "clusters in SHA-1 order of their member ids: test until "
            f"{TEST_SIZE} chains, val until {VAL_SIZE}, rest train; folds: smallest first",
        },
        "max_identity_between_splits": round(check_leakage(list(splits.values()), names, ident), 4),
        "max_identity_between_folds": round(check_leakage(folds, names, ident), 4),
        "n_clusters": len(groups),
        "splits": splits,
        "folds": folds,
        "identity": {"names": names, "matrix": [[round(float(v), 3) for v in row] for row in ident]},
    }


def main() -> None:
    from .data import SPLITS_FILE

    table = build()
    text = json.dumps({k: v for k, v in table.items() if k != "identity"}, indent=1)
    matrix = ",\n  ".join(json.dumps(row) for row in table["identity"]["matrix"])
    names = json.dumps(table["identity"]["names"])
    text = text[:-2] + f',\n "identity": {{"names": {names},\n "matrix": [\n  {matrix}]}}\n}}\n'
    json.loads(text)  # the hand-joined text must stay valid JSON
    Path(SPLITS_FILE).write_text(text)
    sizes = {k: len(v) for k, v in table["splits"].items()}
    print(
        f"wrote {SPLITS_FILE}: {sizes}, folds {[len(f) for f in table['folds']]}, "
        f"max identity across splits {table['max_identity_between_splits']}"
    )


if __name__ == "__main__":
    main()
