"""The bundled model's card: the static text in plugin.py plus the measured figures in
``models/protein-fold-small.card.json`` (written after training and evaluation; plain JSON, cheap to read)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from deepapps import ModelCard

CARD_FILE = Path(__file__).parent / "models" / "protein-fold-small.card.json"


def fold_small_card(base: ModelCard) -> ModelCard:
    """``base`` with params, metrics and training record from the card file (when it exists)."""
    try:
        data = json.loads(CARD_FILE.read_text())
    except (OSError, json.JSONDecodeError):
        return base
    return dataclasses.replace(
        base,
        params=data.get("params", base.params),
        metrics={**base.metrics, **data.get("metrics", {})},
        training_command=data.get("training_command", base.training_command),
        metrics_command=data.get("metrics_command", base.metrics_command),
    )
