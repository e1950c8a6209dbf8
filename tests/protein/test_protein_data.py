"""pdb-chains: the shipped chains, the fixed splits and folds, and that no similar chains leak across them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from deepapps_protein import splits as S
from deepapps_protein.data import (
    SPLITS,
    load_chain,
    load_pdb_chains,
    split_ids,
    split_table,
    train_ids_for_fold,
)


def test_splits_and_folds_partition_the_fifty_chains():
    table = split_table()
    ids = {s: set(split_ids(s)) for s in SPLITS}
    assert [len(ids[s]) for s in SPLITS] == [34, 6, 10]
    assert (
        not (ids["train"] & ids["val"])
        and not (ids["train"] & ids["test"])
        and not (ids["val"] & ids["test"])
    )
    everything = set(split_ids("all"))
    assert len(everything) == 50
    folds = [set(f) for f in table["folds"]]
    assert sorted(len(f) for f in folds) == [10] * 5
    assert set().union(*folds) == everything and sum(map(len, folds)) == 50
    assert set(train_ids_for_fold(2)) == everything - folds[2]


def test_no_chain_over_30_percent_identity_crosses_a_split_or_fold():
    table = split_table()
    names, matrix = table["identity"]["names"], np.array(table["identity"]["matrix"])
    assert sorted(names) == sorted(split_ids("all"))
    worst = S.check_leakage([split_ids(s) for s in SPLITS], names, matrix)
    assert worst <= S.IDENTITY_THRESHOLD
    assert worst == pytest.approx(table["max_identity_between_splits"], abs=1e-3)
    assert S.check_leakage(table["folds"], names, matrix) <= S.IDENTITY_THRESHOLD


def test_stored_identities_match_a_fresh_alignment():
    table = split_table()
    names, matrix = table["identity"]["names"], np.array(table["identity"]["matrix"])
    index = {n: i for i, n in enumerate(names)}
    i, j = np.unravel_index(np.argmax(np.triu(matrix, 1)), matrix.shape)  # the closest pair of all
    pairs = [(names[i], names[j])] + list(itertools.islice(itertools.combinations(names[::7], 2), 5))
    for a, b in pairs:
        fresh = S.identity(load_chain(a).sequence, load_chain(b).sequence)
        assert fresh == pytest.approx(matrix[index[a], index[b]], abs=1e-3)


def test_clustering_keeps_similar_sequences_together():
    base = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAGEGLYTHMKALRPDEDRLSPLHSVYVDQWDWERVMGDGERQFSTLKSTVEAIWAGIKATEAAVSEEFGLAPFLPDQIHFVHSQELLSRYPDLDAKGRERAIAKDLGAVFLVGIGGKLSDGHRHDVRAPDYDDWSTPSELGHAGLNGDILVWNPVLEDAFELSSMGIRVDADTLKHQLALTGDEDRLELEWHQALLRGEMPQTIGGGIGQSRLTMLLLQLPHIGQVQAGVWPAACRRRRGVGV"
    similar = base[:60] + "W" * 10 + base[70:120]
    unrelated = "GGGGSGGGGSGGGGSPPPPPDDDDDKKKKKEEEEERRRRRNNNNNQQQQQ" * 2
    names, ident = S.identity_matrix({"a": base[:120], "b": similar, "c": unrelated})
    assert ident[0, 1] > 0.8 and ident[0, 2] < 0.3
    groups = S.clusters(names, ident)
    assert sorted(map(sorted, groups)) == [["a", "b"], ["c"]]
    splits, folds = S.assign(groups, n_folds=2)
    assert any({"a", "b"} <= set(f) for f in folds)
    with pytest.raises(AssertionError, match="identical but in different groups"):
        S.check_leakage([["a", "c"], ["b"]], names, ident)


def test_chains_carry_dssp_strings_aligned_to_their_ca_atoms():
    chains = load_pdb_chains("test", limit=3)
    assert len(chains) == 3
    for c in chains:
        assert len(c.ss) == len(c.sequence) == len(c.ca) and set(c.ss) <= set("HE-")
        bonds = np.linalg.norm(np.diff(c.ca, axis=0), axis=1)
        assert 3.6 < bonds.mean() < 3.9
    total = sum(len(load_chain(i).sequence) for i in split_ids("all"))
    assert total == 6860
