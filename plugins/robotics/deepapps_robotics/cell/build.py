"""Assembling a cell: world, arm, the detector (through the registry), perception and controller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .controller import CellConfig, CellController
from .perception import DepthCamera, Perception
from .robot import PandaArm
from .world import CellWorld

CONFIG_KEYS = (
    "belt_speed",
    "arrival_rate",
    "conf",
    "perception_ms",
    "max_attempts",
    "max_passes",
    "camera_retries",
    "dimension_check",
)


@dataclass
class Cell:
    world: CellWorld
    arm: PandaArm
    perception: Perception
    controller: CellController
    detector_name: str

    def close(self) -> None:
        self.world.close()


def load_detector(detector: Any, device: str, precision: str = "auto"):
    """The object-detection runner the cell sees with: a registered detection model, a local weights
    file, or None for that task's default."""
    import deepapps

    return deepapps.load("object-detection", detector, device=device, precision=precision)


def build_cell(options: dict[str, Any], detector_runner=None) -> Cell:
    """A ready cell from plain options (they cross a process boundary): seed, detector, device, and
    the :class:`CellConfig` fields."""
    from deepapps.runtime.threads import set_threads

    from .parts import part_classes

    set_threads()
    config = CellConfig(**{k: options[k] for k in CONFIG_KEYS if options.get(k) is not None})
    det = detector_runner or load_detector(
        options.get("detector"), options.get("device", "cpu"), options.get("detector_precision", "auto")
    )
    world = CellWorld(part_classes(), seed=int(options.get("seed", 0)), belt_speed=config.belt_speed)
    arm = PandaArm(world)
    perception = Perception(
        det, DepthCamera(world.view, world.proj), conf=config.conf, dimension_check=config.dimension_check
    )
    controller = CellController(world, arm, perception, config)
    return Cell(world, arm, perception, controller, getattr(det, "model_name", str(options.get("detector"))))
