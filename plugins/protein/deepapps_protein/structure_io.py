"""Reading PDB/mmCIF files (with biotite) and writing PDB files (our own writer).

Files are parsed with biotite's ``PDBFile`` and ``CIFFile`` readers (gzip-compressed files too);
a chain is reduced to its amino-acid residues that have a Cα atom, with the N, Cα, C, O backbone
where all four are present. Writing is a small formatter of our own, so the confidence (pLDDT,
0-100) goes exactly into the B-factor column, as AlphaFold and ESMFold do.
"""

from __future__ import annotations

import gzip
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepapps import InputError

from .sequences import clean_sequence

BACKBONE = ("N", "CA", "C", "O")
BACKBONE_ALIASES = {"OT1": "O", "O1": "O"}  # C-terminal carbonyl oxygen names (CHARMM, GROMACS)
THREE_LETTER = {
    "A": "ALA",
    "C": "CYS",
    "D": "ASP",
    "E": "GLU",
    "F": "PHE",
    "G": "GLY",
    "H": "HIS",
    "I": "ILE",
    "K": "LYS",
    "L": "LEU",
    "M": "MET",
    "N": "ASN",
    "P": "PRO",
    "Q": "GLN",
    "R": "ARG",
    "S": "SER",
    "T": "THR",
    "V": "VAL",
    "W": "TRP",
    "Y": "TYR",
    "X": "UNK",
}
ONE_LETTER = {v: k for k, v in THREE_LETTER.items()} | {
    "MSE": "M",
    "SEC": "C",
    "PYL": "K",
    "HSD": "H",
    "HSE": "H",
    "HIE": "H",
    "HID": "H",
    "HIP": "H",
}


@dataclass
class Chain:
    """One protein chain: sequence, Cα coordinates (L x 3, Å), and the backbone (L x 4 x 3) if complete."""

    id: str
    sequence: str
    ca: np.ndarray
    backbone: np.ndarray | None = None
    residue_numbers: list[int] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        self.ca = np.asarray(self.ca, dtype=np.float64)
        if len(self.sequence) != len(self.ca):
            raise ValueError(f"chain {self.id}: {len(self.sequence)} residues but {len(self.ca)} Cα atoms")

    def __len__(self) -> int:
        return len(self.sequence)

    def secondary_structure(self) -> str | None:
        """3-state DSSP string (H, E, -) computed from the backbone with pydssp; None without one."""
        if self.backbone is None:
            return None
        return assign_secondary_structure(self.backbone)


def assign_secondary_structure(backbone: np.ndarray) -> str:
    """DSSP's 3 states from N, Cα, C, O coordinates (pydssp's hydrogen-bond implementation)."""
    import pydssp

    labels = pydssp.assign(np.asarray(backbone, dtype=np.float64), out_type="c3")
    return "".join(str(c) for c in labels)


def _open_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"input {path}: cannot read it ({exc.strerror})") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputError(f"input {path.name}: is not a valid gzip file ({exc})") from exc
    return raw.decode("utf-8", errors="replace")


def _atom_array(path: Path, text: str):
    """biotite AtomArray of the first model, or a one-line InputError for a malformed file."""
    import biotite.structure.io.pdb as pdb
    import biotite.structure.io.pdbx as pdbx

    is_cif = ".cif" in path.name.lower() or text.lstrip().startswith("data_")
    kind = "mmCIF" if is_cif else "PDB"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # element guesses, missing optional fields
            if is_cif:
                cif = pdbx.CIFFile.read(io.StringIO(text))
                return pdbx.get_structure(cif, model=1)
            return pdb.PDBFile.read(io.StringIO(text)).get_structure(model=1)
    except Exception as exc:  # biotite raises many kinds for broken files
        detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise InputError(f"input {path.name}: not a readable {kind} file ({detail})") from exc


def read_structure(path: str | Path, chain: str | None = None) -> Chain:
    """The first protein chain (or ``chain``) of a PDB/mmCIF file, as a :class:`Chain`."""
    path = Path(path)
    text = _open_text(path)
    if not text.strip():
        raise InputError(f"input {path.name}: the file is empty")
    atoms = _atom_array(path, text)
    if atoms.array_length() == 0:
        raise InputError(f"input {path.name}: holds no atoms (ATOM/HETATM records)")
    chains = _protein_chain_ids(atoms)
    if not chains:
        raise InputError(f"input {path.name}: holds no protein chain with Cα atoms")
    if chain is not None and chain not in chains:
        raise InputError(f"input {path.name}: no protein chain {chain!r}; it has {', '.join(chains)}")
    return _chain_from_atoms(atoms, chain or chains[0], path)


def _protein_chain_ids(atoms) -> list[str]:
    mask = (atoms.atom_name == "CA") & np.isin(atoms.res_name, list(ONE_LETTER))
    ids: list[str] = []
    for cid in atoms.chain_id[mask]:
        if str(cid) not in ids:
            ids.append(str(cid))
    return ids


def backbone_residues(atoms, chain_id: str) -> tuple[dict, dict]:
    """Backbone atoms of one chain's amino-acid residues, in file order: ({(res_id, ins_code):
    {atom name: xyz}}, {(res_id, ins_code): residue name}); the first copy of an atom is kept."""
    sel = atoms[(atoms.chain_id == chain_id) & np.isin(atoms.res_name, list(ONE_LETTER))]
    residues: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    names: dict[tuple[int, str], str] = {}
    for atom in sel:
        key = (int(atom.res_id), str(atom.ins_code))
        name = BACKBONE_ALIASES.get(str(atom.atom_name), str(atom.atom_name))
        if name in BACKBONE:
            residues.setdefault(key, {}).setdefault(name, np.asarray(atom.coord, dtype=np.float64))
            names[key] = str(atom.res_name)
    return residues, names


def _chain_from_atoms(atoms, chain_id: str, path: Path) -> Chain:
    residues, names = backbone_residues(atoms, chain_id)
    keys = [k for k in residues if "CA" in residues[k]]
    seq = "".join(ONE_LETTER.get(names[k], "X") for k in keys)
    seq = clean_sequence(seq, where=f"input {path.name} chain {chain_id}")
    ca = np.stack([residues[k]["CA"] for k in keys])
    complete = all(all(a in residues[k] for a in BACKBONE) for k in keys)
    backbone = np.stack([[residues[k][a] for a in BACKBONE] for k in keys]) if complete else None
    stem = path.name.split(".")[0]
    return Chain(
        id=f"{stem}_{chain_id}" if chain_id.strip() else stem,
        sequence=seq,
        ca=ca,
        backbone=backbone,
        residue_numbers=[k[0] for k in keys],
        source=str(path),
    )


def pdb_text(
    sequence: str,
    ca: np.ndarray,
    plddt: np.ndarray | None = None,
    backbone: np.ndarray | None = None,
    chain_id: str = "A",
    remarks: tuple[str, ...] = (),
) -> str:
    """A PDB file: Cα only, or N/Cα/C/O when ``backbone`` (L x 4 x 3) is given; pLDDT in the B-factor column."""
    ca = np.asarray(ca, dtype=np.float64)
    conf = np.zeros(len(sequence)) if plddt is None else np.asarray(plddt, dtype=np.float64)
    lines = [f"REMARK 250 {r}"[:80] for r in remarks]
    serial = 1
    for i, aa in enumerate(sequence):
        atoms = [("CA", ca[i])] if backbone is None else list(zip(BACKBONE, backbone[i], strict=True))
        for name, xyz in atoms:
            x, y, z = (float(v) for v in xyz)
            element = name[0]
            lines.append(
                f"ATOM  {serial:5d} {name:<4s} {THREE_LETTER.get(aa, 'UNK')} {chain_id}{i + 1:4d}    "
                f"{x:8.3f}{y:8.3f}{z:8.3f}{1.0:6.2f}{float(np.clip(conf[i], 0, 100)):6.2f}          {element:>2s}"
            )
            serial += 1
    last = THREE_LETTER.get(sequence[-1], "UNK")
    lines.append(f"TER   {serial:5d}      {last} {chain_id}{len(sequence):4d}")
    lines.append("END")
    return "\n".join(lines) + "\n"
