"""The ``pdb-chains`` dataset: 50 real PDB chains shipped by ``mdanalysistests`` with their DSSP strings.

``MDAnalysisTests/data/dssp/`` holds ``<pdb id><chain>.pdb.gz`` (one chain each, 79-173 residues,
6,860 in all) and ``<same>.pdb.dssp``, a 3-state DSSP string (H, E, -) aligned 1:1 with the Cα
atoms. The package is located without importing it (importing it pulls in MDAnalysis).

Splits are fixed and stored in ``data/splits.json`` (made by :mod:`deepapps_protein.splits`): no
chain, nor one with more than 30% sequence identity to it, is in two of train/val/test, nor in two
of the five cross-validation folds.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from deepapps import InputError

from .structure_io import Chain, read_structure

DATASET = "pdb-chains"
SPLITS = ("train", "val", "test")
N_FOLDS = 5
FOLD_SPLITS = tuple(f"fold-{k}" for k in range(N_FOLDS))
SPLITS_FILE = Path(__file__).parent / "data" / "splits.json"
DATA_PACKAGE = "MDAnalysisTests"


@dataclass
class LabelledChain:
    """A chain with its DSSP 3-state string (H, E, -) aligned to its Cα atoms."""

    chain: Chain
    ss: str

    def __len__(self) -> int:
        return len(self.chain)

    @property
    def id(self) -> str:
        return self.chain.id

    @property
    def sequence(self) -> str:
        return self.chain.sequence

    @property
    def ca(self):
        return self.chain.ca


def data_dir() -> Path:
    """``MDAnalysisTests/data`` of the installed package (found without importing MDAnalysis)."""
    spec = importlib.util.find_spec(DATA_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "the pdb-chains dataset needs the mdanalysistests package; run `pip install 'deepapps[protein]'`"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def chain_files() -> dict[str, tuple[Path, Path]]:
    """chain id (``1ahsA``) -> (structure file, DSSP file) for every chain that has both."""
    folder = data_dir() / "dssp"
    out = {}
    for pdb in sorted(folder.glob("*.pdb.gz")):
        dssp = pdb.with_name(pdb.name.replace(".gz", ".dssp"))
        if dssp.exists():
            out[pdb.name.split(".")[0]] = (pdb, dssp)
    return out


@functools.cache
def load_chain(chain_id: str) -> LabelledChain:
    files = chain_files()
    if chain_id not in files:
        raise InputError(f"pdb-chains has no chain {chain_id!r}")
    pdb, dssp = files[chain_id]
    chain = read_structure(pdb)
    chain.id = chain_id
    ss = dssp.read_text().split()[0]
    if len(ss) != len(chain):
        raise InputError(f"chain {chain_id}: DSSP string has {len(ss)} states for {len(chain)} residues")
    return LabelledChain(chain=chain, ss=ss)


@functools.lru_cache(maxsize=1)
def split_table() -> dict:
    return json.loads(SPLITS_FILE.read_text())


def split_ids(split: str) -> list[str]:
    """Chain ids of ``train``, ``val``, ``test``, ``all`` or ``fold-0`` ... ``fold-4``."""
    table = split_table()
    if split == "all":
        return sorted(i for s in SPLITS for i in table["splits"][s])
    if split in table["splits"]:
        return list(table["splits"][split])
    if split in FOLD_SPLITS:
        return list(table["folds"][int(split.split("-")[1])])
    valid = ", ".join((*SPLITS, "all", *FOLD_SPLITS))
    raise InputError(f"unknown split {split!r} of pdb-chains; use one of {valid}")


def load_pdb_chains(split: str = "train", limit: int | None = None) -> list[LabelledChain]:
    """The labelled chains of a split (registered as the ``pdb-chains`` dataset's loader)."""
    ids = split_ids(split)
    if limit is not None:
        ids = ids[: int(limit)]
    return [load_chain(i) for i in ids]


def train_ids_for_fold(fold: int) -> list[str]:
    """Cross-validation: every chain outside ``fold``."""
    folds = split_table()["folds"]
    return sorted(i for k, ids in enumerate(folds) if k != fold for i in ids)
