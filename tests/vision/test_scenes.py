"""The rendered `scenes` dataset: exact labels, fixed splits, YOLO layout, registration."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from deepapps.errors import InputError
from deepapps_vision.scenes import (
    CLASSES,
    SceneRenderer,
    generate,
    load_split,
    read_instance_mask,
    read_labels,
)
from deepapps_vision.scenes.dataset import split_of


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    return generate(12, seed=3, size=96, out_dir=root, progress=False)


def test_classes_are_named_and_at_least_five():
    assert len(CLASSES) >= 5
    assert {"duck", "teddy", "lego", "soccer_ball", "mug"} <= set(CLASSES)


def test_layout_and_yaml(tiny):
    cfg = yaml.safe_load(tiny.read_text())
    assert cfg["names"] == dict(enumerate(CLASSES))
    root = tiny.parent
    counts = {s: len(list((root / "images" / s).glob("*.jpg"))) for s in ("train", "val", "test")}
    assert counts == {"train": 10, "val": 1, "test": 1}  # i % 10: 0-7 train, 8 val, 9 test; 10, 11 train
    meta = json.loads((root / "meta.json").read_text())
    assert meta["images"] == counts
    assert sum(meta["instances"]["train"].values()) > 0


def test_split_rule_is_fixed_by_index():
    assert [split_of(i, 100) for i in (0, 7, 8, 9, 18, 19)] == [
        "train",
        "train",
        "val",
        "test",
        "val",
        "test",
    ]
    assert [split_of(i, 4) for i in range(4)] == ["train", "train", "val", "test"]


def test_labels_are_the_tight_boxes_of_the_masks(tiny):
    checked = 0
    for split in ("train", "val", "test"):
        for item in load_split(split, data=tiny):
            with Image.open(item["image"]) as img:
                w, h = img.size
            assert (w, h) == (96, 96)
            classes, boxes = read_labels(item["label"], w, h)
            mask = read_instance_mask(item["image"])
            assert mask.shape == (h, w)
            assert mask.max() == len(classes)  # one mask id per label line, distractors are 0
            for k, (c, box) in enumerate(zip(classes, boxes, strict=False), start=1):
                ys, xs = np.nonzero(mask == k)
                assert len(xs) > 0 and 0 <= c < len(CLASSES)
                expected = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
                np.testing.assert_allclose(box, expected, atol=1e-3)
                checked += 1
    assert checked > 5


def test_same_seed_same_scene_and_objects_visible():
    with SceneRenderer(64) as r:
        a = r.render(np.random.default_rng([5, 1]))
        b = r.render(np.random.default_rng([5, 1]))
        c = r.render(np.random.default_rng([5, 2]))
    np.testing.assert_array_equal(a.image, b.image)
    assert a.classes == b.classes and a.boxes == b.boxes
    assert not np.array_equal(a.image, c.image)
    assert a.image.shape == (64, 64, 3) and a.image.dtype == np.uint8
    assert a.image.std() > 5  # a real picture, not a blank frame


def test_generate_reuses_finished_dataset(tiny):
    stamp = (tiny.parent / "meta.json").stat().st_mtime_ns
    again = generate(12, seed=3, size=96, out_dir=tiny.parent, progress=False)
    assert again == tiny and (tiny.parent / "meta.json").stat().st_mtime_ns == stamp


def test_bad_arguments():
    with pytest.raises(InputError):
        generate(0)
    with pytest.raises(InputError):
        load_split("holdout", data="/nonexistent")


def test_registered_dataset():
    import deepapps

    spec = deepapps.registry.dataset("scenes")
    assert spec.task == "object-detection" and spec.splits == ("train", "val", "test")
