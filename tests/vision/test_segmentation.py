"""Promptable segmentation (SAM): a tiny random SAM for shapes and contracts, the bundled model for quality."""

from __future__ import annotations

import json

import numpy as np
import pytest

import deepapps
from deepapps.errors import CheckpointError, InputError
from deepapps_vision.segmentation import rle
from deepapps_vision.segmentation.arch import SAM_TEST, VIT_B, VIT_H, arch_from_state_dict, build_sam
from deepapps_vision.segmentation.metrics import MaskAP, iou_matrix, mask_iou
from deepapps_vision.segmentation.prompts import corrective_click, inner_point

# the scenes dataset puts scene i of seed 0 in the test split when i % 10 == 9
TEST_SCENES = (9, 19, 29)
# floors for the bundled model on those renders (its measured figures are in docs/segmentation.md)
# (the 3900-step weights, measured with the defaults, zoom-in and the guided refinement: box 0.98, one click
# 0.98 on the five objects; detect then segment 0.98 on the first render; --zoom off: 0.97, 0.93, 0.98; the
# network's own masks, --zoom off --refine none: 0.86, 0.85, 0.87)
BOX_MIN_IOU = 0.9
CLICK_MIN_IOU = 0.9
DTS_MIN_IOU = 0.9
# segment everything at the model's defaults (grid masks remade from their boxes): best mask on the one object
# of render 29 (measured 1.00; 0.90 as the grid made them, --no-remask)
EVERYTHING_MIN_IOU = 0.8


@pytest.fixture(scope="module")
def tiny_sam(tmp_path_factory):
    """A randomly initialised SAM_TEST saved as deepapps safetensors and as an official-style .pth."""
    import torch

    from deepapps.runtime.checkpoint import save_checkpoint

    folder = tmp_path_factory.mktemp("sam")
    torch.manual_seed(0)
    sam = build_sam(SAM_TEST)
    st = save_checkpoint(
        folder / "tiny.safetensors",
        sam.state_dict(),
        {"format": "deepapps-sam-v1", "arch": SAM_TEST.to_dict()},
    )
    pth = folder / "tiny.pth"
    torch.save(sam.state_dict(), pth)
    return {"safetensors": st, "pth": pth}


@pytest.fixture
def runner(tiny_sam):
    return deepapps.load("segmentation", tiny_sam["safetensors"], device="cpu", cache=False)


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    img = (rng.random((48, 64, 3)) * 60).astype(np.uint8)
    img[10:30, 20:45] = (200, 40, 40)
    return img


@pytest.fixture(scope="module")
def test_renders():
    from deepapps_vision.scenes import SceneRenderer

    with SceneRenderer(320) as renderer:
        return [renderer.render(np.random.default_rng([0, i])) for i in TEST_SCENES]


# --- RLE ---------------------------------------------------------------------------------------------------
def test_rle_matches_coco_and_round_trips():
    m = np.zeros((6, 8), dtype=bool)
    m[1:4, 2:7] = True
    m[5, 0] = m[0, 7] = True
    assert rle.encode(m) == {"size": [6, 8], "counts": "5172L0000000ON3"}  # pycocotools' string
    big = np.zeros((1000, 1000), dtype=bool)
    big[100:900, 200:300] = True
    assert rle.encode(big)["counts"].startswith("T]S6Pi0X6000") and rle.encode(big)["counts"].endswith(
        "l_[e0"
    )
    rng = np.random.default_rng(1)
    for shape in [(1, 1), (5, 7), (64, 48)]:
        for p in (0.0, 0.05, 0.5, 1.0):
            mask = rng.random(shape) < p
            enc = rle.encode(mask)
            assert np.array_equal(rle.decode(enc), mask)
            assert rle.area(enc) == mask.sum()
    assert np.array_equal(rle.decode({"size": [2, 2], "counts": [1, 3]}), np.array([[0, 1], [1, 1]], bool))
    with pytest.raises(InputError, match="cover"):
        rle.decode({"size": [3, 3], "counts": "13"})


# --- architectures -----------------------------------------------------------------------------------------
def test_architecture_is_read_back_from_weights():
    import torch
    from segment_anything.modeling import Sam

    sam = build_sam(SAM_TEST)
    assert isinstance(sam, Sam) and sum(p.numel() for p in sam.parameters()) < 150_000
    assert arch_from_state_dict(sam.state_dict()) == SAM_TEST
    with torch.device("meta"):  # the official builders, without allocating 90-640 M parameters
        for arch in (VIT_B, VIT_H):
            assert arch_from_state_dict(build_sam(arch).state_dict()).name == arch.name
    with pytest.raises(CheckpointError, match="not a segment-anything SAM"):
        arch_from_state_dict({"conv.weight": torch.zeros(1)})


# --- mask refinement (guided filter) ----------------------------------------------------------------------
def test_box_mean_matches_a_direct_window_average():
    import torch

    from deepapps_vision.segmentation.refine import box_mean

    x = torch.rand(2, 9, 11)
    got = box_mean(x, 2)
    for i, j in [(0, 0), (4, 5), (8, 10), (1, 9)]:
        window = x[:, max(0, i - 2) : i + 3, max(0, j - 2) : j + 3]
        assert torch.allclose(got[:, i, j], window.mean((-1, -2)), atol=1e-5)


def test_guided_refinement_snaps_a_coarse_mask_to_the_image_edges():
    """A blurred mask shifted 3 px off a red square follows the square's edges after the filter."""
    import torch

    from deepapps_vision.segmentation.refine import Guide, Refinement, refine_masks

    rng = np.random.default_rng(1)
    img = (rng.random((96, 128, 3)) * 40 + 100).astype(np.uint8)
    img[30:70, 40:90] = (220, 30, 30)
    truth = np.zeros((96, 128), bool)
    truth[30:70, 40:90] = True
    coarse = np.full((96, 128), -4.0, np.float32)
    coarse[33:73, 43:93] = 4.0
    coarse = torch.nn.functional.avg_pool2d(torch.from_numpy(coarse)[None], 7, 1, 3)[0]
    before = mask_iou(coarse.numpy() > 0, truth)
    for cell_px in (
        4,
        2,
    ):  # coefficients at full size (128 = 4 x 32), and at half size (the fast guided filter)
        guide = Guide(img, Refinement("guided", radius=2.0, eps=1e-3, cell_px=cell_px), logit_side=32)
        assert guide.work == ((96, 128) if cell_px == 4 else (48, 64))
        after = mask_iou(refine_masks(coarse[None], guide)[0].numpy(), truth)
        assert before < 0.85 and after > 0.95, (cell_px, before, after)


def test_refined_masks_keep_the_clicks_and_lose_small_holes():
    from deepapps_vision.segmentation.refine import respect_prompts

    raw = np.zeros((1, 40, 40), bool)
    raw[0, 5:35, 5:35] = True  # the network's mask: a filled square
    filtered = raw.copy()
    filtered[0, 15:18, 15:18] = False  # a 9 px hole cut by the filter (a dark patch on the object)
    filtered[0, 5:12, 28:35] = False  # a bite at a corner, where the user clicked
    filtered[0, 36:39, 5:9] = True  # the filter spilled onto the background, where the user clicked "not"
    points, labels = np.array([[30.5, 8.0], [6.0, 37.0]]), np.array([1, 0])
    kept = respect_prompts(filtered, raw, points, labels, max_hole=9)
    assert kept[0, 15:18, 15:18].all() and kept[0, 5:12, 28:35].all() and not kept[0, 36:39, 5:9].any()
    assert np.array_equal(kept, raw)
    # a hole larger than max_hole stays; with no clicks the bite and the spill stay too
    alone = respect_prompts(filtered, raw, None, None, max_hole=8)
    assert not alone[0, 15:18, 15:18].any() and not alone[0, 5:12, 28:35].any() and alone[0, 36:39, 5:9].all()
    assert respect_prompts(filtered, raw, None, None, max_hole=0).sum() == filtered.sum()


def test_max_points_follow_the_model_and_cut_long_click_lists(tiny_sam, image, monkeypatch):
    from deepapps_vision.segmentation.runner import max_points_for
    from deepapps_vision.segmentation.specs import MAX_POINTS_SMALL

    assert max_points_for(VIT_B, {}, None) == 0  # official SAM: every point
    assert max_points_for(SAM_TEST, {}, None) == MAX_POINTS_SMALL >= 2
    assert (
        max_points_for(SAM_TEST, {"max_points": 5}, None) == 5
        and max_points_for(VIT_B, {"max_points": 5}, 3) == 3
    )
    with pytest.raises(CheckpointError, match="max_points"):
        max_points_for(SAM_TEST, {"max_points": 1}, None)
    with pytest.raises(InputError, match="max-points"):
        max_points_for(SAM_TEST, {}, 1)
    r = deepapps.load("segmentation", tiny_sam["safetensors"], device="cpu", cache=False, max_points=3)
    r.set_image(image)
    seen = []
    original = r.predictor.predict_torch

    def spy(coords, labels, *args, **kwargs):
        seen.append(None if coords is None else coords[0].tolist())
        return original(coords, labels, *args, **kwargs)

    monkeypatch.setattr(r.predictor, "predict_torch", spy)
    points = [[10, 10], [20, 12], [30, 14], [40, 16], [50, 18]]
    _, _, logits = r.predict(points=points[:1])
    r.predict(points=points, labels=[1, 0, 1, 0, 1])  # no mask_input: every point
    r.predict(points=points, labels=[1, 0, 1, 0, 1], mask_input=logits[0])  # the first and the latest two
    scale = r.predictor.transform.apply_coords(np.array(points, float), (48, 64))
    assert len(seen[1]) == 5 and np.allclose(seen[2], scale[[0, 3, 4]], atol=1e-4)
    import deepapps_vision.segmentation.loading as loading

    monkeypatch.setattr(loading, "load_sam", lambda *a, **k: pytest.fail("the model loaded before the check"))
    with pytest.raises(InputError, match="max-points"):
        deepapps.load("segmentation", tiny_sam["safetensors"], device="cpu", cache=False, max_points=1)


def test_click_check_keeps_the_candidate_that_breaks_the_fewest_clicks():
    from deepapps_vision.segmentation.clicks import choose, contradictions, local_version

    def square(x0, y0, x1, y1):
        m = np.zeros((40, 40), bool)
        m[y0:y1, x0:x1] = True
        return m

    points, labels = np.array([[10.0, 10.0], [30.5, 10.2], [20.0, 35.0]]), np.array([1, 1, 0])
    small, wide, spill = square(5, 5, 15, 15), square(5, 5, 35, 15), square(5, 5, 35, 38)
    assert [contradictions(m, points, labels) for m in (small, wide, spill)] == [1, 0, 1]
    masks = np.stack([small, spill, wide])
    scores, logits = np.array([0.9, 0.8, 0.1], np.float32), np.arange(3, dtype=np.float32)[:, None, None]
    mask, score, logit = choose(masks, scores, logits, points, labels, None, "masks")
    assert (mask[0] == wide).all() and score.tolist() == [np.float32(0.1)] and logit[0, 0, 0] == 2
    # every output breaks a click: the one with the highest predicted IoU among the fewest
    mask, score, _ = choose(masks[:2], scores[:2], logits[:2], points, labels, None, "masks")
    assert (mask[0] == small).all() and score[0] == np.float32(0.9)
    # local: the previous mask changed only around the new click (the output's other change is not taken)
    points2, labels2 = points[[0, 2, 1]], labels[[0, 2, 1]]  # the latest click: positive at (30.5, 10.2)
    blob = square(5, 5, 35, 15) | square(16, 30, 26, 38)  # also covers the negative click at (20, 35)
    grow = local_version(blob, small, points2[-1])
    assert grow is not None and (grow == wide).all()
    assert local_version(small, small, points2[-1]) is None  # it does not change the clicked pixel
    two, two_scores, two_logits = np.stack([small, blob]), np.array([0.9, 0.8], np.float32), logits[:2]
    mask, score, logit = choose(two, two_scores, two_logits, points2, labels2, None, "masks")
    assert (mask[0] == small).all()  # both break one click
    mask, score, logit = choose(two, two_scores, two_logits, points2, labels2, small, "local")
    assert (mask[0] == wide).all() and score[0] == np.float32(0.8) and logit[0, 0, 0] == 1  # the blob's own
    # a network output that breaks no more clicks than a local version wins
    three = np.stack([small, blob, wide])
    mask, _, logit = choose(three, scores, logits, points2, labels2, small, "local")
    assert (mask[0] == wide).all() and logit[0, 0, 0] == 2
    with pytest.raises(ValueError, match="click check"):
        choose(masks, scores, logits, points, labels, None, "vote")


def test_click_check_follows_the_model_and_sees_four_outputs(tiny_sam, image, monkeypatch):
    import deepapps_vision.segmentation.runner as runner_module
    from deepapps_vision.segmentation.clicks import MODES
    from deepapps_vision.segmentation.runner import RETURNED_MASKS, click_check_for
    from deepapps_vision.segmentation.specs import CLICK_CHECK_SMALL, MASK_OPTIONS

    option = next(o for o in MASK_OPTIONS if o.name == "click_check")
    assert set(option.choices) == set(MODES) and CLICK_CHECK_SMALL in MODES
    assert (
        click_check_for(VIT_B, {}, None) == "off" and click_check_for(SAM_TEST, {}, None) == CLICK_CHECK_SMALL
    )
    assert click_check_for(SAM_TEST, {"click_check": "masks"}, None) == "masks"
    assert click_check_for(VIT_B, {"click_check": "masks"}, "off") == "off"
    with pytest.raises(CheckpointError, match="click_check"):
        click_check_for(SAM_TEST, {"click_check": "always"}, None)
    r = deepapps.load("segmentation", tiny_sam["safetensors"], device="cpu", cache=False, zoom="off")
    assert r.click_check == CLICK_CHECK_SMALL
    r.set_image(image)
    flags, seen = [], []
    original = r.predictor.predict_torch

    def spy(*args, **kwargs):
        flags.append(args[4])
        return original(*args, **kwargs)

    def record(masks, scores, logits, points, labels, previous, mode):
        seen.append((len(masks), len(points), previous, mode))
        return masks[:1], scores[:1], logits[:1]

    monkeypatch.setattr(r.predictor, "predict_torch", spy)
    monkeypatch.setattr(runner_module, "choose", record)
    masks, _, logits = r.predict(points=[[30, 20]])
    assert flags == [True] and not seen  # a first click: SAM's three masks, nothing to check
    clicks = [[30, 20], [10, 10], [50, 40], [12, 40], [55, 5]]
    out, scores, out_logits = r.predict(points=clicks, labels=[1, 0, 1, 0, 1], mask_input=logits[0])
    assert flags[1:] == [False, True] and out.shape == (1, 48, 64) and len(scores) == 1
    count, given, previous, mode = seen[-1]
    # four candidates, every click counted (the decoder got MAX_POINTS_SMALL of them), the previous mask known
    assert count == 4 and given == 5 and mode == CLICK_CHECK_SMALL and (previous == masks[0]).all()
    r.predict(points=clicks[:2], labels=[1, 0], mask_input=np.zeros_like(logits[0]))
    assert seen[-1][2] is None  # mask_input the runner did not return: no previous mask
    r.predict(points=clicks[:2], labels=[1, 0], mask_input=out_logits[0])
    assert (seen[-1][2] == out[0]).all()  # one of its latest answers, not only the last
    for i in range(RETURNED_MASKS):  # older than the runner remembers
        r.predict(points=clicks[:2], labels=[1, 0], mask_input=np.full_like(logits[0], float(i)))
    r.predict(points=clicks[:2], labels=[1, 0], mask_input=out_logits[0])
    assert seen[-1][2] is None
    off = r.with_click_check("off")
    assert off.click_check == "off" and r.click_check == CLICK_CHECK_SMALL and off.cache is r.cache
    with pytest.raises(ValueError, match="click check"):
        r.with_click_check("vote")
    flags.clear()
    off.predict(points=clicks[:2], labels=[1, 0], mask_input=logits[0])
    assert flags == [False] and len(seen) == 4 + RETURNED_MASKS  # SAM's single output
    assert not off._returned  # only the local check needs the previous masks: nothing is kept


def test_refinement_defaults_follow_the_model_and_options(tiny_sam, image):
    import torch

    from deepapps_vision.segmentation.refine import Refinement
    from deepapps_vision.segmentation.runner import refinement_for

    assert refinement_for(VIT_B, {}).method == "none"  # official SAM as published
    small = refinement_for(SAM_TEST, {})
    assert small.method == "guided" and small.radius > 0
    assert refinement_for(SAM_TEST, {"refine": {"eps": 0.5}}).eps == 0.5
    for bad in ({"radius": -1}, {"colour": 1}, {"method": "crf"}, "guided"):
        with pytest.raises(CheckpointError, match="refine"):
            refinement_for(SAM_TEST, {"refine": bad})
    assert refinement_for(SAM_TEST, {}, method="none", radius=None, eps=None).method == "none"
    plain = deepapps.load("segmentation", tiny_sam["safetensors"], device="cpu", cache=False, refine="none")
    refined = deepapps.load(
        "segmentation", tiny_sam["safetensors"], device="cpu", cache=False, refine_eps=0.01
    )
    assert not plain.refinement.active and refined.refinement.eps == 0.01
    for r in (plain, refined):
        r.set_image(image)
    masks, _, logits = plain.predict(box=[15, 5, 50, 35])
    full = plain.sam.postprocess_masks(torch.from_numpy(logits)[None], plain.predictor.input_size, (48, 64))
    assert np.array_equal(masks[0], full[0, 0].numpy() > 0)  # none: exactly SAM's thresholded mask
    masks_r, _, logits_r = refined.predict(box=[15, 5, 50, 35])
    assert masks_r.shape == masks.shape and np.allclose(logits_r, logits)  # logits stay the model's own
    unrefined = refined.with_refinement(Refinement("none"))  # the same model, cache and image
    assert not unrefined.refinement.active and refined.refinement.active and unrefined.sam is refined.sam
    calls = refined.encoder_calls
    assert unrefined.set_image(image) is True and unrefined.encoder_calls == calls
    assert np.array_equal(unrefined.predict(box=[15, 5, 50, 35])[0], masks)
    with pytest.raises(Exception, match="refine"):
        deepapps.load("segmentation", tiny_sam["safetensors"], device="cpu", cache=False, refine="crf")


def test_zoom_crops_and_logit_grids():
    import torch

    from deepapps_vision.segmentation.zoom import Crop, Zoom, crop_for, from_crop, logits_region, to_crop

    zoom = Zoom("on", max_scale=2.0, context=1.0)
    assert crop_for((100, 100, 110, 110), 320, 320, zoom) == Crop(25, 25, 160, 160)  # the smallest crop: 2x
    assert crop_for((100, 100, 160, 140), 320, 320, zoom) == Crop(40, 30, 180, 180)  # 60 px x (1 + 2)
    assert crop_for((0, 300, 20, 320), 320, 320, zoom) == Crop(0, 160, 160, 160)  # kept inside the image
    assert crop_for((0, 0, 200, 200), 320, 320, zoom) is None  # would be the whole image
    assert crop_for((10, 10, 20, 20), 320, 100, zoom) == Crop(0, 0, 160, 100)  # clipped to a short side
    for bad in (dict(mode="zoom"), dict(max_scale=0.5), dict(context=-1)):
        with pytest.raises(ValueError):
            Zoom(**bad)
    side = 16  # a whole-image logit grid of 16 cells on a 320 px image: 20 px cells
    ys, xs = np.mgrid[0:side, 0:side]
    whole = torch.from_numpy(xs + 2.0 * ys - 20).float()[None, None]  # linear: bilinear resampling is exact
    assert logits_region(whole[0, 0].numpy(), 320, 320) == (0.0, 60.0, 320.0, 320.0)
    blob = np.full((side, side), -5.0)
    blob[4:6, 8:12] = 3.0
    assert (
        logits_region(blob, 320, 320) == (160.0, 80.0, 240.0, 120.0)
        and logits_region(-blob * 0 - 1, 9, 9) is None
    )
    crop = Crop(80, 80, 160, 160)  # centred, 2x: crop cells are 10 px, the first centred on pixel 85
    inside = to_crop(whole, crop, 320, 320)
    cx = (80 + (np.arange(side) + 0.5) * 10) / 20 - 0.5  # crop cell centres in whole-image cells
    assert torch.allclose(
        inside[0, 0], torch.from_numpy(cx[None, :] + 2.0 * cx[:, None] - 20).float(), atol=1e-4
    )
    back = from_crop(inside, crop, 320, 320)
    assert torch.allclose(back[0, 0, 5:11, 5:11], whole[0, 0, 5:11, 5:11], atol=1e-4)  # a round trip
    assert (back[0, 0, :4] == inside.min()).all()  # outside the crop: the crop's lowest logit


def test_zoom_defaults_and_a_zoomed_box(tiny_sam):
    from deepapps_vision.segmentation.runner import image_key, zoom_for
    from deepapps_vision.segmentation.zoom import Zoom

    assert zoom_for(VIT_B, {}).mode == "off" and zoom_for(SAM_TEST, {}).active  # official SAM as published
    assert zoom_for(SAM_TEST, {"zoom": {"context": 0.5}}).context == 0.5
    assert zoom_for(SAM_TEST, {}, mode="off", max_scale=None, context=None).mode == "off"
    for bad in ({"max_scale": 0}, {"scale": 2}, "on"):
        with pytest.raises(CheckpointError, match="zoom"):
            zoom_for(SAM_TEST, {"zoom": bad})
    r = deepapps.load("segmentation", tiny_sam["safetensors"], device="cpu", cache=False, refine="none")
    big = np.full((120, 160, 3), 40, np.uint8)
    big[50:70, 70:95] = (200, 40, 40)
    r.set_image(big)
    calls = r.encoder_calls
    masks, scores, logits = r.predict(box=[70, 50, 95, 70])
    assert masks.shape == (1, 120, 160) and logits.shape == (1, SAM_TEST.low_res, SAM_TEST.low_res)
    assert r.encoder_calls == calls + 1  # the crop's embedding
    crop_side = round(160 / r.zoom.max_scale)  # 25 px x 3 < 96 px: the smallest crop
    outside = np.ones((120, 160), bool)
    top, left = round(60 - crop_side / 2), round(82.5 - crop_side / 2)
    outside[top : top + crop_side, left : left + crop_side] = False
    assert not masks[0][outside].any()  # nothing outside the crop
    assert r.predictor.last_key == image_key(big) and r.set_image(big) is True  # the whole image is back
    again = r.predict(box=[70, 50, 95, 70])
    assert r.encoder_calls == calls + 1 and np.array_equal(again[0], masks)  # the crop is cached too
    flat = r.with_zoom(Zoom("off"))
    assert flat.predict(box=[70, 50, 95, 70])[0].shape == masks.shape and flat.encoder_calls == calls + 1
    both = r.predict_boxes(np.array([[70, 50, 95, 70], [10, 10, 30, 40]]))
    assert both[0].shape == (2, 120, 160) and np.array_equal(both[0][0], masks[0])
    click = r.predict(points=[[80, 60]])
    assert click[0].shape == (3, 120, 160)
    follow = r.predict(points=[[80, 60], [90, 65]], labels=[1, 0], mask_input=click[2][0], multimask=False)
    assert follow[0].shape == (1, 120, 160)


# --- the API on a tiny random SAM --------------------------------------------------------------------------
def test_predict_shapes_and_result(runner, image):
    assert runner.set_image(image) is False
    masks, scores, logits = runner.predict(points=[[30, 20]], labels=[1])
    side = SAM_TEST.low_res
    assert masks.shape == (3, 48, 64) and masks.dtype == bool and logits.shape == (3, side, side)
    assert list(scores) == sorted(scores, reverse=True)
    masks, scores, _ = runner.predict(points=[30, 20, 5, 5], labels=[1, 0])
    assert masks.shape == (1, 48, 64) and scores.shape == (1,)
    masks, _, logits = runner.predict(box=[15, 5, 50, 35])
    refined, _, _ = runner.predict(points=[[30, 20]], mask_input=logits[0], multimask=False)
    assert refined.shape == (1, 48, 64)
    res = runner(image, points=[30, 20], box=[15, 5, 50, 35])
    data = res.to_dict()
    assert data["mode"] == "prompt" and data["box"] == [15.0, 5.0, 50.0, 35.0] and data["labels"] == [1]
    assert np.array_equal(rle.decode(data["instances"][0]["rle"]), res.mask(0))
    assert res.plot().size == (64, 48)
    assert set(res.timings) >= {"load", "embed", "decode", "total"}
    json.dumps(data)


def test_embedding_cache_skips_the_encoder(tiny_sam, image, monkeypatch):
    r = deepapps.load(
        "segmentation", tiny_sam["safetensors"], device="cpu", cache=False, cache_size=2, zoom="off"
    )
    calls = []
    encoder = r.sam.image_encoder
    original = encoder.forward
    monkeypatch.setattr(encoder, "forward", lambda x: calls.append(1) or original(x))
    assert r.set_image(image) is False
    assert r.set_image(image.copy()) is True  # same content, another array
    r(image, points=[10, 10])
    r(image, box=[1, 1, 30, 30])
    assert len(calls) == 1 and r.encoder_calls == 1
    other = image.copy()
    other[0, 0, 0] += 1
    third = image.copy()
    third[0, 0, 1] += 1
    r.set_image(other)
    r.set_image(third)
    assert r.set_image(image) is False  # evicted: the cache holds two embeddings
    assert len(calls) == 4


def test_official_style_pth_is_converted_once(tiny_sam, image):
    from deepapps.runtime.home import models_dir

    from_st = deepapps.load("segmentation", tiny_sam["safetensors"], device="cpu", cache=False)
    from_pth = deepapps.load("segmentation", tiny_sam["pth"], device="cpu", cache=False)
    converted = list((models_dir() / "segmentation-converted").glob("tiny-*.safetensors"))
    assert len(converted) == 1
    stamp = converted[0].stat().st_mtime_ns
    a = from_st(image, points=[30, 20])
    b = from_pth(image, points=[30, 20])
    assert np.allclose(a.scores, b.scores, atol=1e-5) and np.array_equal(a.masks, b.masks)
    deepapps.load("segmentation", tiny_sam["pth"], device="cpu", cache=False)
    assert converted[0].stat().st_mtime_ns == stamp


def test_pickled_code_is_refused(tmp_path):
    import torch

    bad = tmp_path / "evil.pth"
    torch.save({"image_encoder.x": InputError("not a tensor")}, bad)
    with pytest.raises(CheckpointError, match="safely"):
        deepapps.load("segmentation", bad, device="cpu", cache=False)


def test_segment_everything_on_tiny(runner, image):
    res = runner(image, points_per_side=4, pred_iou_thresh=0.0, stability_thresh=0.0)
    assert res.mode == "everything" and res.masks.shape[1:] == (48, 64)
    assert len(res.instances) == len(res.masks) and all(m.stability is not None for m in res.instances)
    # explicit filters are used as given; unset ones take the model's own (small SAM: the measured ones)
    assert res.filters == {
        "points_per_side": 4,
        "pred_iou_thresh": 0.0,
        "stability_thresh": 0.0,
        "iou": 0.5,
        "remask": True,
    }
    # remade from their boxes (zoom-in and refinement are on for a small SAM): no two overlap beyond --iou
    overlap = iou_matrix(res.masks, res.masks) - np.eye(len(res.masks))
    assert res.masks.any(axis=(1, 2)).all() and (overlap <= 0.5).all()
    raw = runner(image, points_per_side=4, pred_iou_thresh=0.0, stability_thresh=0.0, remask=False)
    assert raw.filters["remask"] is False and len(raw.instances) >= 1
    encodes = runner.encoder_calls
    assert runner.predict(points=[[10, 10]])[0].shape == (3, 48, 64)  # the image stays set after the grid
    assert runner.encoder_calls == encodes


def test_everything_ap_scores_the_grid_masks_against_the_objects():
    from types import SimpleNamespace

    from deepapps_vision.segmentation.data import Sample
    from deepapps_vision.segmentation.evaluate import everything_ap

    instances = np.zeros((20, 30), dtype=np.int32)
    instances[2:8, 2:9], instances[10:18, 4:12], instances[5:15, 18:28] = 1, 2, 3
    sample = Sample("s", np.zeros((20, 30, 3), np.uint8), instances, [0, 1, 2])
    gt = np.stack([instances == k for k in (1, 2, 3)])

    class Grid:
        def __init__(self, masks, scores):
            self.masks, self.scores = masks, np.asarray(scores, dtype=np.float32)
            self.settings = []

        def segment_everything(self, image, **settings):
            self.settings.append(settings)
            return SimpleNamespace(masks=self.masks, scores=self.scores, instances=list(self.scores))

    exact = Grid(gt, [0.9, 0.8, 0.7])
    assert everything_ap(exact, [sample], {"remask": True}, progress=False) == {
        "everything_mask_ap50_95": 1.0,
        "everything_mask_ap50": 1.0,
        "everything_recall50": 1.0,
        "everything_masks_per_image": 3.0,
    }
    assert exact.settings == [{"remask": True}]
    # object 3 missed, and a wrong mask ranked first: recall 2/3, AP below 2/3
    wrong = np.zeros_like(gt[:1])
    wrong[0, 0:2, 20:30] = True
    partial = everything_ap(
        Grid(np.concatenate([wrong, gt[:2]]), [0.9, 0.8, 0.7]), [sample], {}, progress=False
    )
    assert partial["everything_recall50"] == pytest.approx(2 / 3)
    assert 0.3 < partial["everything_mask_ap50"] < 2 / 3 and partial["everything_masks_per_image"] == 3.0


def test_everything_defaults_follow_the_model():
    from deepapps_vision.segmentation.runner import everything_defaults
    from deepapps_vision.segmentation.specs import EVERYTHING_OPTIONS, EVERYTHING_SAM, EVERYTHING_SMALL

    assert all(opt.default is None for opt in EVERYTHING_OPTIONS)  # so a user's value is never confused
    sam_own = {
        "points_per_side": 32,
        "pred_iou_thresh": 0.88,
        "stability_thresh": 0.95,
        "iou": 0.7,
        "remask": False,
    }
    assert everything_defaults(VIT_B, {}) == EVERYTHING_SAM == sam_own
    assert everything_defaults(SAM_TEST, {}) == EVERYTHING_SMALL
    own = everything_defaults(SAM_TEST, {"everything": {"pred_iou_thresh": 0.3}})
    assert own == {**EVERYTHING_SMALL, "pred_iou_thresh": 0.3}


@pytest.mark.parametrize(
    "call, message",
    [
        (dict(points=[100, 5]), "outside the 64x48 image"),
        (dict(points=[-1, 5]), "outside"),
        (dict(points=[]), "empty point list"),
        (dict(points=[5, 5, 6], labels=None), "x,y pairs"),
        (dict(points=[5, 5, 6, 6], labels=[1]), "1 label(s) for 2 point(s)"),
        (dict(box=[30, 5, 10, 20]), "x2 <= x1"),
        (dict(box=[1, 2, 3]), "4 numbers"),
        (dict(box=[100, 100, 200, 200]), "outside the 64x48 image"),
        (dict(labels=[1]), "without points"),
        (dict(points=[5, 5], mask_input=np.zeros((3, 3))), "mask_input"),
    ],
)
def test_bad_prompts_are_one_line_errors(runner, image, call, message):
    with pytest.raises(InputError) as info:
        runner(image, **call)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_images_and_prompt_before_image(runner, monkeypatch):
    with pytest.raises(InputError, match="no image set"):
        runner.predict(points=[[1, 1]])
    with pytest.raises(deepapps.OptionError, match="--labels"):
        runner(np.zeros((8, 8, 3), np.uint8), points=[1, 1], labels=[2])
    with pytest.raises(InputError, match="cannot be decoded"):
        runner(b"not an image at all", points=[1, 1])
    monkeypatch.setenv("DEEPAPPS_MAX_PIXELS", "1000")
    with pytest.raises(InputError, match="over the"):
        runner(np.zeros((100, 100, 3), np.uint8), points=[1, 1])


# --- prompts and metrics -----------------------------------------------------------------------------------
def test_corrective_clicks_follow_the_largest_error():
    gt = np.zeros((20, 20), bool)
    gt[2:12, 2:12] = True
    pred = np.zeros_like(gt)
    pred[2:12, 2:6] = True  # misses a 10x6 strip
    pred[15:17, 15:17] = True  # adds a 2x2 blob
    x, y, label = corrective_click(pred, gt)
    assert label == 1 and 6 <= x <= 12 and 2 <= y <= 12
    x, y = inner_point(gt)
    assert (x, y) in {(6.5, 6.5), (7.5, 7.5), (6.5, 7.5), (7.5, 6.5)}
    assert corrective_click(gt, gt) is None


def test_mask_ap():
    gt = np.zeros((2, 10, 10), bool)
    gt[0, :5] = True
    gt[1, 6:] = True
    ap = MaskAP()
    ap.add(gt.copy(), np.array([0.9, 0.8]), np.array([0, 1]), gt, np.array([0, 1]))
    assert ap.compute()["ap50_95"] == pytest.approx(1.0)
    worse = MaskAP()
    wrong = np.zeros((1, 10, 10), bool)
    wrong[0, 9] = True
    worse.add(
        np.concatenate([wrong, gt]), np.array([0.95, 0.9, 0.8]), np.array([0, 0, 1]), gt, np.array([0, 1])
    )
    assert 0.5 < worse.compute()["ap50"] < 1.0
    assert mask_iou(gt[0], gt[0]) == 1.0 and mask_iou(gt[0], gt[1]) == 0.0


# --- verbs -------------------------------------------------------------------------------------------------
def test_cli_run_json_and_png_masks(tiny_sam, tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from deepapps.cli import cli

    picture = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(picture)
    out = tmp_path / "masks"
    res = CliRunner().invoke(
        cli,
        [
            "run",
            "segmentation",
            str(picture),
            "--model",
            str(tiny_sam["safetensors"]),
            "--points",
            "10,12",
            "--labels",
            "1",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)[0]
    assert len(data["instances"]) == 3 and data["points"] == [[10.0, 12.0]]
    assert sorted(p.name for p in out.iterdir()) == ["photo-0.png", "photo-1.png", "photo-2.png"]
    png = np.asarray(Image.open(out / "photo-0.png")) > 0
    assert np.array_equal(png, rle.decode(data["instances"][0]["rle"]))
    res = CliRunner().invoke(
        cli,
        ["run", "segmentation", str(picture), "--model", str(tiny_sam["safetensors"]), "--box", "30,5,10,20"],
    )
    assert res.exit_code == 1 and "x2 <= x1" in res.output


def test_eval_and_bench_on_tiny(tiny_sam):
    from deepapps.resolution import resolve_model
    from deepapps_vision.segmentation.bench import bench
    from deepapps_vision.segmentation.evaluate import evaluate
    from deepapps_vision.segmentation.specs import EVERYTHING_OPTIONS, MASK_OPTIONS, MAX_POINTS_SMALL

    unset = {option.name: None for option in MASK_OPTIONS}  # each verb takes every mask option
    grid = {option.name: None for option in EVERYTHING_OPTIONS}
    ref = resolve_model("segmentation", str(tiny_sam["safetensors"]))
    report = evaluate(
        ref,
        "coins",
        "test",
        None,
        "cpu",
        "fp32",
        max_clicks=3,
        iou_target=0.9,
        detect=False,
        boxes_model=None,
        boxes_conf=0.05,
        everything=False,
        **grid,
        **{**unset, "refine_radius": 3.0, "zoom": "off", "refine_holes": 0.0},
        scene_count=1500,
        scene_seed=0,
        scene_size=320,
        progress=False,
    )
    m = report.metrics
    assert report.n == 1 and m["objects"] == 24 and 0 <= m["miou_box"] <= 1 and 1 <= m["clicks_to_90"] <= 3
    assert report.extra["encoder_calls"] == 1 and report.extra["zoom"]["mode"] == "off"
    assert report.extra["refinement"]["method"] == "guided" and report.extra["refinement"]["radius"] == 3.0
    assert report.extra["refinement"]["holes"] == 0.0 and report.extra["max_points"] == MAX_POINTS_SMALL
    kwargs = dict(repeats=2, image_size=96, everything=False, **grid)
    figures = bench(ref, "cpu", "fp32", **kwargs, **{**unset, "zoom_max": 3.0}).figures
    assert (
        figures["encoder_ms_per_image"]["value"] > 0 and figures["decoder_ms_per_click"]["unit"] == "ms/click"
    )
    assert figures["refine_setup_ms_per_image"]["value"] > 0
    assert figures["decoder_ms_per_corrective_click"]["unit"] == "ms/click"
    assert figures["zoomed_box_ms"]["crops_per_run"] == 1.0  # each timed zoomed box runs a crop's encoder
    plain = bench(ref, "cpu", "fp32", **kwargs, **{**unset, "zoom_max": 3.0, "refine": "none", "zoom": "off"})
    plain = plain.figures
    assert "refine_setup_ms_per_image" not in plain and "zoomed_box_ms" not in plain


def _train_tiny(model, data, out, **changes):
    """``train`` on a folder of tiny scenes with the test architecture; ``changes`` override the options."""
    from deepapps_vision.segmentation.train import train

    options = dict(
        arch="sam_test",
        steps=3,
        minutes=None,
        batch=2,
        objects=2,
        clicks=1,
        zoom_crops=0.0,
        trainable="all",
        lr=1e-3,
        seed=0,
        val_every=2,
        scene_count=1500,
        scene_seed=0,
        scene_size=320,
        progress=False,
    )
    return train(model, str(data.parent), out, "cpu", "fp32", **{**options, **changes})


def test_train_tiny_then_load(tmp_path):
    from deepapps_vision.scenes import generate

    data = generate(10, seed=5, size=64, out_dir=tmp_path / "scenes", progress=False)
    summary = _train_tiny(None, data, tmp_path / "run", zoom_crops=0.5)
    assert summary["steps"] == 3 and (tmp_path / "run" / "metrics.png").exists()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 3] and all(0 <= r["val_miou_box"] <= 1 for r in rows)
    trained = deepapps.load("segmentation", tmp_path / "run" / "model.safetensors", device="cpu", cache=False)
    assert trained.arch == SAM_TEST


def test_trainable_parts(tmp_path, tiny_sam):
    import torch

    from deepapps.resolution import resolve_model
    from deepapps.runtime.checkpoint import load_checkpoint
    from deepapps_vision.scenes import generate

    data = generate(6, seed=3, size=64, out_dir=tmp_path / "scenes", progress=False)
    ref = resolve_model("segmentation", str(tiny_sam["safetensors"]))
    before, _ = load_checkpoint(tiny_sam["safetensors"])
    expected = {
        "decoder": {"prompt_encoder", "mask_decoder"},
        "iou-head": {"mask_decoder.iou_prediction_head"},
    }
    for which, parts in expected.items():
        _train_tiny(ref, data, tmp_path / which, steps=2, trainable=which, lr=1e-2)
        after, meta = load_checkpoint(tmp_path / which / "last.safetensors")
        assert meta["training"]["trainable"] == which
        changed = {k for k in before if not torch.equal(before[k], after[k])}
        assert changed and all(any(k.startswith(p + ".") for p in parts) for k in changed), (which, changed)


# --- the bundled model -------------------------------------------------------------------------------------
def test_bundled_model_segments_held_out_renders(test_renders):
    sam = deepapps.load("segmentation", device="cpu")
    box_ious, click_ious = [], []
    for scene in test_renders:
        sam.set_image(scene.image)
        for k in range(1, len(scene.classes) + 1):
            gt = scene.instance_mask == k
            x0, y0, x1, y1 = scene.boxes[k - 1]
            box_ious.append(mask_iou(sam.predict(box=[x0, y0, x1, y1])[0][0], gt))
            click_ious.append(mask_iou(sam.predict(points=[inner_point(gt)])[0][0], gt))
    assert len(box_ious) >= 5
    assert np.mean(box_ious) >= BOX_MIN_IOU and np.mean(click_ious) >= CLICK_MIN_IOU


def test_detect_then_segment_on_a_render(test_renders):
    from deepapps_vision.scenes import CLASSES

    scene = test_renders[0]
    res = deepapps.load("segmentation", device="cpu")(
        scene.image, boxes_from="object-detection", boxes_conf=0.4
    )
    detections = deepapps.load("object-detection", device="cpu")(scene.image, conf=0.4).detections
    assert res.mode == "detect" and len(res.instances) == len(res.masks) == len(detections) >= 1
    for inst, det in zip(res.instances, detections, strict=True):  # one mask per detector box, labelled
        assert inst.label == det.class_name in CLASSES and inst.det_conf == pytest.approx(det.conf, abs=1e-4)
        assert inst.prompt_box == pytest.approx(det.xyxy, abs=0.01)
    assert res.masks.shape[1:] == scene.instance_mask.shape and res.masks.any(axis=(1, 2)).all()
    best = [
        max(mask_iou(m, scene.instance_mask == k) for m in res.masks)
        for k in range(1, len(scene.classes) + 1)
    ]
    assert np.mean(best) >= DTS_MIN_IOU


def test_bundled_segment_everything_finds_the_object(test_renders):
    """At its own default filters the bundled model returns masks (SAM's 0.88/0.95 kept none)."""
    scene = test_renders[2]  # one object
    res = deepapps.load("segmentation", device="cpu")(scene.image)
    assert res.mode == "everything" and res.filters["points_per_side"] == 12 and len(res.instances) >= 1
    gt = scene.instance_mask == 1
    assert max(mask_iou(m, gt) for m in res.masks) >= EVERYTHING_MIN_IOU
