"""Bad input gets one line that says what and where, before any model loads."""

from __future__ import annotations

import pytest

from deepapps import InputError
from deepapps_protein.sequences import (
    MAX_LENGTH,
    apply_mutations,
    check_input,
    clean_sequence,
    parse_mutation,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("MKTA1YZ", r"2 character\(s\) that are not amino-acid letters: '1' at 5, 'Z' at 7"),
        ("", "is empty"),
        ("   \n ", "is empty"),
        ("MK", "2 residue"),
        ("A" * (MAX_LENGTH + 1), f"over the limit of {MAX_LENGTH}"),
        ("MKTA-YW", "'-' at 5"),
    ],
)
def test_bad_sequences(text, expected):
    with pytest.raises(InputError, match=expected) as err:
        check_input(text)
    assert "\n" not in str(err.value)


def test_good_sequences_are_cleaned():
    assert clean_sequence(" mkt ay\nIAK* ") == "MKTAYIAK"
    check_input("MKTAYIAKQR")
    check_input(">x\nMKTAYIAKQR\n")


def test_files_are_checked_cheaply(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        check_input(str(tmp_path / "missing.fasta"))
    with pytest.raises(InputError, match="is a folder"):
        check_input(str(tmp_path) + "/")
    bad = tmp_path / "bad.fasta"
    bad.write_text(">ok\nMKTAYIAK\n>broken\nMKTB8\n")
    with pytest.raises(InputError, match=r"bad.fasta record 'broken'.*'B' at 4, '8' at 5"):
        check_input(str(bad))


def test_mutations_must_match_the_sequence():
    seq = "MKTAYIAKQR"
    assert apply_mutations(seq, ["A4G", "r10k"])[0] == "MKTGYIAKQK"
    with pytest.raises(InputError, match="residue 4 is A, not L"):
        apply_mutations(seq, ["L4G"])
    with pytest.raises(InputError, match="past the end of the 10-residue"):
        apply_mutations(seq, ["A42G"])
    with pytest.raises(InputError, match="is not like A42G"):
        parse_mutation("42G")
    with pytest.raises(InputError, match="'J' is not an amino-acid letter"):
        parse_mutation("A4J")
    with pytest.raises(InputError, match="positions start at 1"):
        parse_mutation("A0G")
