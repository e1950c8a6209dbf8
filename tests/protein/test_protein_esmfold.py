"""The ESMFold code path (transformers EsmForProteinFolding) with a tiny random model on CPU.

Real weights take the same path: a folder written by ``save_pretrained`` passed as --model.
"""

from __future__ import annotations

import numpy as np
import pytest

import deepapps
from deepapps_protein.esmfold import is_esmfold_dir
from deepapps_protein.structure_io import read_structure

VOCAB = ["<cls>", "<pad>", "<eos>", "<unk>", *"LAGVSERTIDPKQNFYMHWCXBUZO.-", "<null_1>", "<mask>"]


@pytest.fixture(scope="module")
def tiny_esmfold(tmp_path_factory):
    import torch
    from transformers import EsmConfig, EsmForProteinFolding

    config = EsmConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        pad_token_id=1,
        mask_token_id=VOCAB.index("<mask>"),
        is_folding_model=True,
        vocab_list=VOCAB,
        token_dropout=True,
        position_embedding_type="rotary",
        max_position_embeddings=1026,
        esmfold_config={
            "fp16_esm": False,
            "lddt_head_hid_dim": 16,
            "trunk": {
                "num_blocks": 1,
                "sequence_state_dim": 32,
                "pairwise_state_dim": 16,
                "sequence_head_width": 16,
                "pairwise_head_width": 8,
                "position_bins": 8,
                "max_recycles": 1,
                "chunk_size": None,
                "structure_module": {
                    "sequence_dim": 32,
                    "pairwise_dim": 16,
                    "ipa_dim": 8,
                    "resnet_dim": 16,
                    "num_heads_ipa": 2,
                    "num_qk_points": 2,
                    "num_v_points": 2,
                    "num_blocks": 1,
                },
            },
        },
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("esmfold-tiny")
    EsmForProteinFolding(config).save_pretrained(folder)
    return folder


def test_tiny_esmfold_predicts_a_full_backbone_with_confidence(tiny_esmfold, tmp_path):
    assert is_esmfold_dir(tiny_esmfold) and not is_esmfold_dir(tmp_path)
    runner = deepapps.load("structure-prediction", str(tiny_esmfold), device="cpu", chunk_size=4)
    seq = "MKTAYIAKQRQISFVKSHFSRQ"
    result = runner(seq, out=tmp_path, recycles=0)
    assert result.length == len(seq) and result.backbone_atoms == "N,CA,C,O"
    assert np.asarray(result.ca).shape == (len(seq), 3)
    assert all(0.0 <= p <= 100.0 for p in result.plddt)
    assert result.contacts.shape == (len(seq), len(seq)) and np.allclose(result.contacts, result.contacts.T)
    assert len(result.ss) == len(seq) and set(result.ss) <= set("HE-")
    back = read_structure(tmp_path / "query.pdb")  # N, CA, C, O per residue, pLDDT in B-factors
    assert back.sequence == seq and back.backbone is not None
    assert np.allclose(back.ca, result.ca, atol=2e-3)
    again = runner(seq, recycles=0)
    assert np.allclose(again.ca, result.ca)  # deterministic in eval mode
