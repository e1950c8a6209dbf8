"""The secondary-structure task: the PARROT BRNN code path (random weights), and the real PredictDSSP network
pulled from its PyPI wheel like a user would (kept in DEEPAPPS_TEST_MODELS_HOME; CI pulls it first)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import deepapps
from deepapps_protein.data import load_pdb_chains
from deepapps_protein.metrics import q3

TASK = "secondary-structure"


def test_a_parrot_state_dict_loads_by_path_and_predicts(tmp_path):
    import torch

    from deepapps_protein.ss_model import _build_brnn

    torch.manual_seed(0)
    net = _build_brnn(hidden=8, layers=2, classes=3)
    path = tmp_path / "brnn.pt"
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)  # PARROT's layout
    runner = deepapps.load(TASK, str(path), device="cpu")
    result = runner("MKTAYIAKQRXW")
    assert len(result.ss) == 12 and set(result.ss) <= set("HE-")
    probs = np.asarray(result.probabilities)
    assert probs.shape == (12, 3) and np.allclose(probs.sum(1), 1.0, atol=1e-3)
    assert result.q3 is None and result.plot().size[0] > 0
    bad = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(2)}, bad)
    with pytest.raises(deepapps.ModelNotAvailableError, match="not a PARROT BRNN"):
        deepapps.load(TASK, str(bad), device="cpu")


@pytest.fixture
def real_home(monkeypatch):
    folder = Path(
        os.environ.get("DEEPAPPS_TEST_MODELS_HOME", Path.home() / ".cache" / "deepapps-test-models")
    )
    monkeypatch.setenv("DEEPAPPS_HOME", str(folder))
    return folder


@pytest.mark.slow
def test_real_predictdssp_is_pulled_and_predicts_test_chains(real_home):
    from deepapps.runtime.pull import pull

    spec = deepapps.registry.model("predictdssp")
    path = pull(spec, progress=False)
    assert str(path).startswith(str(real_home)) and path.name.endswith(".pt")
    runner = deepapps.load(TASK, "predictdssp", device="cpu", cache=False)
    chains = load_pdb_chains("test", limit=3)
    predicted = "".join(runner(c.sequence).ss for c in chains)
    truth = "".join(c.ss for c in chains)
    assert q3(predicted, truth) > 0.6  # a trained network; the majority class gets about 0.4
