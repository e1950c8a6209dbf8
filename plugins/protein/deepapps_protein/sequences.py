"""Protein sequences: the alphabet, input checks, FASTA, and point mutations (pure Python, no numpy).

Everything here is cheap so the CLI can check an input before any model loads. Errors are
one-line :class:`~deepapps.InputError` messages that say what is wrong, where, and what to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from deepapps import InputError

# the 20 standard amino acids (alphabetical one-letter codes) and X for "unknown"
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
ALPHABET = AMINO_ACIDS + "X"
MIN_LENGTH = 3  # a chain needs three residues for a bond angle
MAX_LENGTH = 1000  # pair maps grow as L^2: 1000 residues is ~1 GB of float32 pair features
FASTA_SUFFIXES = (".fasta", ".fa", ".faa", ".fas", ".fsa")
STRUCTURE_SUFFIXES = (".pdb", ".ent", ".cif", ".mmcif", ".pdb.gz", ".ent.gz", ".cif.gz")
_MUTATION = re.compile(r"^([A-Za-z])(\d+)([A-Za-z])$")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class SequenceRecord:
    """One chain to predict: an id (used for file names), its sequence, and where it came from."""

    id: str
    sequence: str
    description: str = ""

    @property
    def safe_id(self) -> str:
        """The id as a file-name-safe stem (``sp|P69905|HBA`` -> ``sp_P69905_HBA``)."""
        return _SAFE.sub("_", self.id).strip("._") or "query"


def clean_sequence(text: str, where: str = "sequence") -> str:
    """Upper-case ``text`` without white space, checked: only amino-acid letters, 3-1000 of them.

    Raises InputError naming the first bad character and its 1-based position.
    """
    seq = "".join(str(text).split()).upper()
    if seq.endswith("*"):  # a stop codon mark at the end is common in FASTA files
        seq = seq[:-1]
    if not seq:
        raise InputError(f"{where} is empty; give an amino-acid sequence such as MKTAYIAKQR")
    bad = [(i + 1, c) for i, c in enumerate(seq) if c not in ALPHABET]
    if bad:
        shown = ", ".join(f"{c!r} at {i}" for i, c in bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise InputError(
            f"{where} has {len(bad)} character(s) that are not amino-acid letters: {shown}; "
            f"use the one-letter codes {AMINO_ACIDS} (X for unknown)"
        )
    if len(seq) < MIN_LENGTH:
        raise InputError(f"{where} has {len(seq)} residue(s); at least {MIN_LENGTH} are needed")
    if len(seq) > MAX_LENGTH:
        raise InputError(
            f"{where} has {len(seq)} residues, over the limit of {MAX_LENGTH}; split it into domains"
        )
    return seq


def parse_fasta(text: str, where: str = "FASTA") -> list[SequenceRecord]:
    """Records of a FASTA text (``>id description`` lines, then sequence lines), each checked."""
    records: list[SequenceRecord] = []
    header: str | None = None
    lines: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            if header is not None:
                records.append(_record(header, lines, where, len(records) + 1))
            header, lines = line[1:].strip(), []
        elif header is None:
            raise InputError(
                f"{where}: line {number} comes before the first '>' header; "
                "a FASTA file starts with a line like '>my_protein'"
            )
        else:
            lines.append(line)
    if header is not None:
        records.append(_record(header, lines, where, len(records) + 1))
    if not records:
        raise InputError(f"{where} holds no records; a FASTA record is a '>id' line and sequence lines")
    return records


def _record(header: str, lines: list[str], where: str, index: int) -> SequenceRecord:
    rid, _, description = header.partition(" ")
    rid = rid or f"record{index}"
    seq = clean_sequence("".join(lines), where=f"{where} record {rid!r}")
    return SequenceRecord(id=rid, sequence=seq, description=description.strip())


def is_structure_path(path: str | Path) -> bool:
    return str(path).lower().endswith(STRUCTURE_SUFFIXES)


def looks_like_path(text: str) -> bool:
    """Text that names a file rather than a sequence (a suffix we read, or a folder separator)."""
    low = text.strip().lower()
    return "/" in low or "\\" in low or low.endswith(FASTA_SUFFIXES + STRUCTURE_SUFFIXES + (".txt",))


def is_existing_file(text: str) -> bool:
    """Whether ``text`` names an existing file (a 1000-letter sequence is too long to be a file name)."""
    try:
        return Path(text).expanduser().is_file()
    except (OSError, ValueError):
        return False


def check_input(text: str) -> None:
    """The CLI's cheap check (TaskSpec.check_input): a sequence, FASTA text, or a FASTA/PDB/mmCIF file."""
    text = str(text)
    path = Path(text).expanduser()
    if looks_like_path(text) or is_existing_file(text):
        if not path.exists():
            raise InputError(f"input {text}: file not found")
        if path.is_dir():
            raise InputError(f"input {text}: is a folder; pass a FASTA, PDB or mmCIF file")
        if is_structure_path(path):
            return  # parsed (and checked) by the structure reader when it runs
        parse_fasta(_read_text(path), where=f"input {path.name}")
        return
    if text.lstrip().startswith(">"):
        parse_fasta(text, where="FASTA text")
        return
    clean_sequence(text, where="input sequence")


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"input {path}: cannot read it ({exc.strerror})") from exc
    if b"\x00" in data[:4096]:
        raise InputError(f"input {path.name}: is a binary file, not FASTA text")
    return data.decode("utf-8", errors="replace")


def read_fasta(path: str | Path) -> list[SequenceRecord]:
    path = Path(path)
    return parse_fasta(_read_text(path), where=f"input {path.name}")


# --- point mutations ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Mutation:
    """A point substitution ``A42G``: wild-type letter, 1-based position, new letter."""

    wild_type: str
    position: int
    new: str

    def __str__(self) -> str:
        return f"{self.wild_type}{self.position}{self.new}"


def parse_mutation(text: str) -> Mutation:
    match = _MUTATION.match(text.strip())
    if not match:
        raise InputError(
            f"mutation {text!r} is not like A42G (wild-type letter, 1-based position, new letter)"
        )
    wt, pos, new = match.group(1).upper(), int(match.group(2)), match.group(3).upper()
    for letter in (wt, new):
        if letter not in ALPHABET:
            raise InputError(f"mutation {text!r}: {letter!r} is not an amino-acid letter ({AMINO_ACIDS})")
    if pos < 1:
        raise InputError(f"mutation {text!r}: positions start at 1")
    return Mutation(wt, pos, new)


def apply_mutations(sequence: str, mutations: list[str] | tuple[str, ...]) -> tuple[str, list[Mutation]]:
    """The mutant sequence; each mutation's wild-type letter must match the sequence at its position."""
    seq = list(sequence)
    parsed = [parse_mutation(m) for m in mutations]
    for m in parsed:
        if m.position > len(seq):
            raise InputError(
                f"mutation {m}: position {m.position} is past the end of the {len(seq)}-residue sequence"
            )
        if sequence[m.position - 1] != m.wild_type:
            raise InputError(
                f"mutation {m}: residue {m.position} is {sequence[m.position - 1]}, "
                f"not {m.wild_type}; check the numbering (1-based, from the sequence start)"
            )
        seq[m.position - 1] = m.new
    return "".join(seq), parsed
