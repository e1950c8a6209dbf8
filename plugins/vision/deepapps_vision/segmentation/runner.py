"""The segmentation runner: SAM with a cached image embedding, prompts, everything mode, detect then segment.

```python
import deepapps
sam = deepapps.load("segmentation")               # bundled sam-tiny-scenes; or model="sam_vit_b_01ec64.pth"
sam.set_image("photo.jpg")                        # encoder runs once per distinct image (LRU cache)
masks, scores, logits = sam.predict(points=[[120, 80]], labels=[1])
masks, scores, logits = sam.predict(box=[40, 30, 200, 180])
r = sam("photo.jpg", points=[120, 80, 160, 90], labels=[1, 0])     # SegmentationResult
r = sam("photo.jpg", boxes_from="object-detection")                 # one labelled mask per detection
r = sam("photo.jpg")                                                # no prompt: segment everything
r.masks, r.instances[0].rle, r.plot(), r.save_masks("out/")
```
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from deepapps.errors import CheckpointError, InputError
from deepapps.resolution import ModelRef
from deepapps.runner import Runner, describe_input

from .clicks import LOCAL as CLICK_CHECK_LOCAL
from .clicks import MODES as CLICK_CHECKS
from .clicks import OFF as CLICK_CHECK_OFF
from .clicks import check_mode, choose
from .metrics import iou_matrix
from .prompts import check_box, check_points
from .refine import Guide, Refinement, refine_masks, respect_prompts
from .results import SegmentationResult, make_instances
from .rle import bbox_xywh
from .specs import (
    CLICK_CHECK_SMALL,
    EVERYTHING_SAM,
    EVERYTHING_SMALL,
    MAX_POINTS_SMALL,
    REFINE_SAM,
    REFINE_SMALL,
    TASK,
    ZOOM_SAM,
    ZOOM_SMALL,
)
from .zoom import Zoom, crop_for, from_crop, logits_region, paste, to_crop


def image_key(image: np.ndarray) -> str:
    """Content hash of an RGB array (shape included): the embedding cache key."""
    digest = hashlib.blake2b(image.tobytes(), digest_size=16)
    digest.update(repr(image.shape).encode())
    return digest.hexdigest()


class EmbeddingCache:
    """A bounded LRU of image embeddings: ``key -> (features, input_size, original_size)``."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self.items: OrderedDict[str, tuple[Any, tuple[int, int], tuple[int, int]]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: str):
        entry = self.items.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.items.move_to_end(key)
        self.hits += 1
        return entry

    def touch(self, key: str) -> None:
        """Make ``key`` the most recently used entry (no hit is counted)."""
        if key in self.items:
            self.items.move_to_end(key)

    def put(self, key: str, entry: tuple[Any, tuple[int, int], tuple[int, int]]) -> None:
        self.items[key] = entry
        self.items.move_to_end(key)
        while len(self.items) > self.size:
            self.items.popitem(last=False)


def cached_predictor(sam: Any, cache: EmbeddingCache, device: str, precision: str):
    """A ``SamPredictor`` whose ``set_image`` looks the embedding up before running the encoder.

    The automatic mask generator gets the same predictor, so "segment everything" after a click reuses it.
    """
    from segment_anything import SamPredictor

    from deepapps.runtime.precision import autocast, inference_mode

    class CachedPredictor(SamPredictor):
        encoder_calls = 0
        last_hit = False
        last_key = ""

        def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
            key = self.last_key = image_key(image)
            entry = cache.get(key)
            self.last_hit = entry is not None
            if entry is None:
                with inference_mode(), autocast(device, precision):
                    super().set_image(image, image_format)
                self.features = self.features.float()
                self.encoder_calls += 1
                cache.put(key, (self.features, self.original_size, self.input_size))
                return
            self.reset_image()
            self.features, self.original_size, self.input_size = entry
            self.is_image_set = True

        def state(self) -> tuple[Any, ...]:
            """The current image's embedding and sizes, to come back to after a crop (zoom-in)."""
            return self.features, self.original_size, self.input_size, self.last_key, self.last_hit

        def restore(self, state: tuple[Any, ...]) -> None:
            self.features, self.original_size, self.input_size, self.last_key, self.last_hit = state
            self.is_image_set = True
            cache.touch(self.last_key)  # keep the whole image the most recently used entry

    return CachedPredictor(sam)


#: how many of its latest masks a runner remembers for the click check (a first click's three, then one per click)
RETURNED_MASKS = 12


class SegmentationRunner(Runner):
    """Promptable segmentation with a SAM; see the module docstring."""

    task = TASK

    def __init__(
        self,
        model_name: str,
        device: str,
        precision: str,
        sam: Any,
        arch: Any,
        cache_size: int = 8,
        everything: dict[str, Any] | None = None,
        refinement: Refinement | None = None,
        zoom: Zoom | None = None,
        max_points: int = 0,
        click_check: str = CLICK_CHECK_OFF,
    ) -> None:
        super().__init__(model_name, device, precision)
        self.sam = sam
        self.arch = arch
        #: this model's own segment-everything filters (used where the caller leaves one unset)
        self.everything_defaults = everything_defaults(arch, {"everything": everything or {}})
        #: how prompted masks are refined after the decoder (refine.py); none is SAM's own behaviour
        self.refinement = refinement or Refinement()
        #: whether prompted masks are made again on a crop around the object (zoom.py); off is SAM's own
        self.zoom = zoom or Zoom()
        #: with mask_input, the decoder gets the first click and the latest ones, at most this many (0: all)
        self.max_points = max_points
        #: after a corrective click, which candidate mask is kept (clicks.py): off is SAM's single output
        self.click_check = check_mode(click_check)
        #: with the local click check, the masks predict returned lately (bit-packed), by image and logits: a
        #: next click's previous mask
        self._returned: OrderedDict[str, tuple[np.ndarray, tuple[int, ...]]] = OrderedDict()
        self.cache = EmbeddingCache(cache_size)
        self.predictor = cached_predictor(sam, self.cache, device, precision)
        self.image = None  # the PIL image set last
        self.pixels: np.ndarray | None = None  # the same as an RGB array (crops and the filter read it)
        self._guides: OrderedDict[str, Guide] = OrderedDict()  # the refinement's per-image half, by image key
        self.lock = threading.Lock()  # one call at a time: the runner holds the current image

    def with_refinement(self, refinement: Refinement) -> SegmentationRunner:
        """This runner with another mask refinement, sharing its model, embedding cache and lock."""
        return self._with(refinement=refinement)

    def with_zoom(self, zoom: Zoom) -> SegmentationRunner:
        """This runner with zoom-in switched (``Zoom("off")``) or set, sharing its model, cache and lock."""
        return self._with(zoom=zoom)

    def with_click_check(self, mode: str) -> SegmentationRunner:
        """This runner with another click check (clicks.py: local, masks or off), sharing its model, cache
        and lock."""
        return self._with(click_check=check_mode(mode))

    def _with(self, **changes: Any) -> SegmentationRunner:
        import copy

        other = copy.copy(self)
        for name, value in changes.items():
            setattr(other, name, value)
        other._guides = OrderedDict()
        other._returned = OrderedDict()
        return other

    @property
    def encoder_calls(self) -> int:
        """How many times the image encoder ran (cache misses)."""
        return self.predictor.encoder_calls

    # --- the SamPredictor-style API -----------------------------------------------------------------
    def set_image(self, image: Any) -> bool:
        """Compute (or fetch from the cache) the embedding of ``image``; True when it was cached."""
        from deepapps.runtime.images import load_image

        pil = load_image(image)
        pixels = np.asarray(pil)
        self.predictor.set_image(pixels)
        self.image, self.pixels = pil, pixels
        return self.predictor.last_hit

    def _require_image(self) -> tuple[int, int]:
        if self.image is None or not self.predictor.is_image_set:
            raise InputError("no image set: call set_image(image) before predict(...)")
        return self.image.size

    def predict(
        self,
        points: Any = None,
        labels: Any = None,
        box: Any = None,
        multimask: bool | None = None,
        mask_input: Any = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks (C x H x W bool), predicted IoUs (C,) and low-res logits (C x h x w) for the prompts,
        best first. Points are ``[[x, y], ...]`` (or flat), labels 1/0, box ``[x1, y1, x2, y2]``."""
        import torch

        width, height = self._require_image()
        pts, labs = check_points(points, labels, width, height)
        bx = check_box(box, width, height)
        if pts is None and bx is None and mask_input is None:
            raise InputError("no prompt: give points (x,y pairs) or a box (x1,y1,x2,y2)")
        if multimask is None:
            multimask = pts is not None and len(pts) == 1 and bx is None
        mask_t = None if mask_input is None else self._mask_input(mask_input)
        every = (
            self.click_check != CLICK_CHECK_OFF
            and mask_t is not None
            and pts is not None
            and len(pts) > 1
            and not multimask
        )  # a corrective click: the decoder's four outputs are candidates (clicks.py)
        remember = self.click_check == CLICK_CHECK_LOCAL  # only local versions need the previous mask
        previous = self._previous_mask(mask_t) if every and remember else None
        given_pts, given_labs = pts, labs
        if mask_t is not None and pts is not None and 0 < self.max_points < len(pts):
            # the first click and the latest ones; the earlier corrections live on in mask_input
            keep = np.r_[0, np.arange(len(pts) - self.max_points + 1, len(pts))]
            pts, labs = pts[keep], labs[keep]
        with torch.inference_mode():
            if self.zoom.active:
                masks, scores, logits = self._zoomed(pts, labs, bx, multimask, mask_t, every)
            else:
                masks, scores, logits = self._decode(pts, labs, bx, multimask, mask_t, every=every)
        order = torch.argsort(scores, descending=True)
        masks, scores, logits = (
            masks[order].cpu().numpy(),
            scores[order].float().cpu().numpy(),
            logits[order].float().cpu().numpy(),
        )
        if every:
            masks, scores, logits = choose(
                masks, scores, logits, given_pts, given_labs, previous, self.click_check
            )
        if remember:
            self._remember(masks, logits)
        return masks, scores, logits

    def _remember(self, masks: np.ndarray, logits: np.ndarray) -> None:
        """Keep the masks just returned (bit-packed) by their logits, the latest RETURNED_MASKS in all."""
        for mask, logit in zip(masks, logits, strict=True):
            key = self._output_key(logit)
            self._returned[key] = (np.packbits(mask), mask.shape)
            self._returned.move_to_end(key)
        while len(self._returned) > RETURNED_MASKS:
            self._returned.popitem(last=False)

    def _previous_mask(self, mask_t) -> np.ndarray | None:
        """The mask this runner returned with the logits ``mask_t``, when it is one of its latest answers."""
        found = self._returned.get(self._output_key(mask_t))
        if found is None:
            return None
        bits, shape = found
        return np.unpackbits(bits, count=int(np.prod(shape))).reshape(shape).astype(bool)

    def _output_key(self, logits: Any) -> str:
        """The key of one low-res logits array (1 x 1 x L x L or L x L) of the current image, so that a next
        click's ``mask_input`` finds the mask it came with."""
        import torch

        if isinstance(logits, torch.Tensor):
            logits = logits.float().cpu().numpy()
        digest = hashlib.blake2b(np.ascontiguousarray(logits, dtype=np.float32).tobytes(), digest_size=16)
        digest.update(self.predictor.last_key.encode())
        return digest.hexdigest()

    def _decode(
        self, pts, labs, bx, multimask: bool, mask_t, image: np.ndarray | None = None, every: bool = False
    ):
        """Masks (C x H x W), scores (C) and low-res logits (C x L x L) on the predictor's current image
        (``image``, when it is a crop of the runner's image; prompts in its pixels). ``every``: all four of
        the decoder's outputs (the single-mask one, then the three multimask ones)."""
        import torch

        size = self.predictor.original_size
        dev = self.predictor.device
        tf = self.predictor.transform
        coords = labels_t = box_t = None
        if pts is not None:
            coords = torch.as_tensor(tf.apply_coords(pts, size), dtype=torch.float, device=dev)[None]
            labels_t = torch.as_tensor(labs, dtype=torch.int, device=dev)[None]
        if bx is not None:
            box_t = torch.as_tensor(tf.apply_boxes(bx[None], size), dtype=torch.float, device=dev)
        outputs = [
            self.predictor.predict_torch(
                coords, labels_t, box_t, mask_t, flag, return_logits=self.refinement.active
            )
            for flag in ((False, True) if every else (multimask,))
        ]
        masks, scores, logits = (torch.cat([out[i] for out in outputs], 1) for i in range(3))
        return self._finish_masks(masks[0], image, pts, labs), scores[0], logits[0]

    def _zoomed(self, pts, labs, bx, multimask: bool, mask_t, every: bool = False):
        """``_decode`` again on a crop around the object (zoom.py); the whole image when no crop helps."""
        width, height = self.image.size
        first = None
        if bx is not None:
            region = tuple(float(v) for v in bx)
        elif mask_t is not None:
            region = logits_region(mask_t[0, 0].float().cpu().numpy(), width, height)
        else:  # a click alone: the object's extent comes from a first pass on the whole image
            first = self._decode(pts, labs, None, multimask, None)
            region = logits_region(first[2][int(first[1].argmax())].float().cpu().numpy(), width, height)
        if pts is not None and (labs == 1).any():
            positive = pts[labs == 1]
            xs = [positive[:, 0].min(), positive[:, 0].max() + 1]
            ys = [positive[:, 1].min(), positive[:, 1].max() + 1]
            if region is not None:
                xs, ys = xs + [region[0], region[2]], ys + [region[1], region[3]]
            region = (min(xs), min(ys), max(xs), max(ys))
        crop = None if region is None else crop_for(region, width, height, self.zoom)
        if crop is None:
            return first or self._decode(pts, labs, bx, multimask, mask_t, every=every)
        inside = None if pts is None else np.array([crop.contains(x, y) for x, y in pts])
        if bx is None and not (inside is not None and inside.any()):
            return first or self._decode(pts, labs, bx, multimask, mask_t, every=every)
        shift = np.array([crop.left, crop.top], dtype=np.float64)
        crop_pts = crop_labs = crop_box = None
        if inside is not None and inside.any():
            crop_pts, crop_labs = pts[inside] - shift, labs[inside]
        if bx is not None:
            crop_box = np.clip(bx - np.tile(shift, 2), 0, [crop.width, crop.height] * 2)
        crop_mask = None if mask_t is None else to_crop(mask_t, crop, width, height)
        image = crop.of(self.pixels)
        whole = self.predictor.state()
        try:
            self.predictor.set_image(image)
            masks, scores, logits = self._decode(
                crop_pts, crop_labs, crop_box, multimask, crop_mask, image, every
            )
        finally:
            self.predictor.restore(whole)
        return paste(masks, crop, width, height), scores, from_crop(logits[None], crop, width, height)[0]

    def _finish_masks(self, masks, image: np.ndarray | None = None, pts=None, labs=None):
        """Boolean masks from the predictor's output: thresholded by SAM, or full-size logits refined (then
        small holes filled and the clicks ``pts``, in ``image``'s pixels, kept as the network had them)."""
        import torch

        if not self.refinement.active:
            return masks
        key = self.predictor.last_key
        guide = self._guides.get(key)
        if guide is None:
            pixels = self.pixels if image is None else image
            # a crop's window covers the same part of the scene as on the whole image (radius in its cells)
            magnification = max(self.image.size) / max(pixels.shape[:2])
            guide = self._guides[key] = Guide(pixels, self.refinement, self.arch.low_res, magnification)
            while len(self._guides) > 4:
                self._guides.popitem(last=False)
        refined = refine_masks(masks, guide, self.refinement.threshold).cpu().numpy()
        cell = max(self.image.size) / self.arch.low_res  # a crop keeps the image's pixel scale
        kept = respect_prompts(refined, (masks > 0).cpu().numpy(), pts, labs, self.refinement.holes * cell**2)
        return torch.from_numpy(kept).to(masks.device)

    def _mask_input(self, mask_input: Any):
        import torch

        side = self.arch.low_res
        arr = np.asarray(mask_input, dtype=np.float32)
        if arr.ndim == 3 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.shape != (side, side) or not np.isfinite(arr).all():
            raise InputError(
                f"mask_input must be one {side}x{side} array of finite logits (low_res_logits[i])"
            )
        return torch.as_tensor(arr, device=self.predictor.device)[None, None]

    def predict_boxes(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One mask per box (N x 4 pixel xyxy) in one decoder batch (one crop each with zoom-in): masks,
        predicted IoUs, logits."""
        import torch

        width, height = self._require_image()
        boxes = np.stack([check_box(b, width, height) for b in np.asarray(boxes, dtype=float).reshape(-1, 4)])
        with torch.inference_mode():
            if self.zoom.active:
                found = [self._zoomed(None, None, b, False, None) for b in boxes]
                masks, scores, logits = (torch.stack([f[i][0] for f in found]) for i in range(3))
            else:
                box_t = torch.as_tensor(
                    self.predictor.transform.apply_boxes(boxes, self.predictor.original_size),
                    dtype=torch.float,
                    device=self.predictor.device,
                )
                masks, scores, logits = self.predictor.predict_torch(
                    None, None, box_t, None, False, return_logits=self.refinement.active
                )
                masks, scores, logits = self._finish_masks(masks[:, 0]), scores[:, 0], logits[:, 0]
        return masks.cpu().numpy(), scores.float().cpu().numpy(), logits.float().cpu().numpy()

    def segment_everything(
        self,
        image: Any,
        points_per_side: int | None = None,
        pred_iou_thresh: float | None = None,
        stability_thresh: float | None = None,
        iou: float | None = None,
        remask: bool | None = None,
    ) -> SegmentationResult:
        """Masks of everything in ``image`` from a grid of point prompts (SamAutomaticMaskGenerator:
        filtering by predicted IoU and stability, then box NMS), largest first; with ``remask`` each kept
        mask is made again from its box through the prompt pipeline (:meth:`_remasked`). A setting left as
        None takes this model's own value (``everything_defaults``)."""
        hit = self.set_image(image)
        return self._everything(points_per_side, pred_iou_thresh, stability_thresh, iou, remask, hit)

    def _everything(
        self,
        points_per_side: int | None,
        pred_iou_thresh: float | None,
        stability_thresh: float | None,
        iou: float | None,
        remask: bool | None,
        hit: bool,
    ) -> SegmentationResult:
        from segment_anything import SamAutomaticMaskGenerator

        used = self.resolved_everything(
            points_per_side=points_per_side,
            pred_iou_thresh=pred_iou_thresh,
            stability_thresh=stability_thresh,
            iou=iou,
            remask=remask,
        )
        generator = SamAutomaticMaskGenerator(
            self.sam,
            points_per_side=int(used["points_per_side"]),
            pred_iou_thresh=float(used["pred_iou_thresh"]),
            stability_score_thresh=float(used["stability_thresh"]),
            box_nms_thresh=float(used["iou"]),
            output_mode="binary_mask",
        )
        generator.predictor = self.predictor  # reuse the cached embedding
        records = generator.generate(self.pixels)
        # the generator resets the predictor's image; a cache hit brings it back for later prompts
        self.predictor.set_image(self.pixels)
        if used["remask"] and records and (self.zoom.active or self.refinement.active):
            records = self._remasked(records, float(used["iou"]))
        records = sorted(records, key=lambda r: -r["area"])
        masks = np.stack([r["segmentation"] for r in records]) if records else self._no_masks()
        scores = np.asarray([r["predicted_iou"] for r in records], dtype=np.float32)
        stability = [float(r["stability_score"]) for r in records]
        boxes = (
            np.asarray([r["prompt_box"] for r in records]) if records and "prompt_box" in records[0] else None
        )
        return self._result(
            "everything", masks, scores, None, hit, stability=stability, boxes=boxes, filters=used
        )

    def resolved_everything(self, **given: Any) -> dict[str, Any]:
        """The segment-everything settings a call uses: each one ``given`` as not None, else this model's own
        (``everything_defaults``)."""
        return {k: v if given.get(k) is None else given[k] for k, v in self.everything_defaults.items()}

    def _remasked(self, records: list[dict[str, Any]], iou: float) -> list[dict[str, Any]]:
        """The grid's masks made again from their boxes, as box prompts through zoom-in and refinement (a
        grid mask is the network's coarse one-point guess; its box is a prompt the pipeline segments well).
        Each remade mask is scored by its box prompt's predicted IoU (its stability stays the grid mask's,
        the filter that let it in); best first, one overlapping a kept mask by more than ``iou`` is dropped."""
        # the generator's x, y, w, h ends at the mask's last pixel; a box prompt ends one past it
        boxes = np.asarray([r["bbox"] for r in records], dtype=np.float64)
        boxes[:, 2:] += boxes[:, :2] + 1
        width, height = self.image.size
        boxes[:, 2:] = np.minimum(boxes[:, 2:], [width, height])
        masks, scores, _ = self.predict_boxes(boxes)
        order = np.argsort(-scores, kind="stable")
        overlap = iou_matrix(masks, masks)
        kept: list[int] = []
        for i in order:
            if masks[i].any() and all(overlap[i, j] <= iou for j in kept):
                kept.append(int(i))
        return [
            {
                **records[i],
                "segmentation": masks[i],
                "area": int(masks[i].sum()),
                "bbox": bbox_xywh(masks[i]),
                "predicted_iou": float(scores[i]),
                "prompt_box": boxes[i],
            }
            for i in kept
        ]

    def _no_masks(self) -> np.ndarray:
        w, h = self.image.size
        return np.zeros((0, h, w), dtype=bool)

    def _result(
        self, mode: str, masks: np.ndarray, scores: np.ndarray, logits: Any, hit: bool, **extra: Any
    ) -> SegmentationResult:
        w, h = self.image.size
        return SegmentationResult(
            width=w,
            height=h,
            mode=mode,
            embedding_cached=hit,
            masks=masks,
            low_res_logits=logits,
            image=self.image,
            instances=make_instances(
                masks,
                scores,
                names=extra.pop("names", None),
                det_conf=extra.pop("det_conf", None),
                boxes=extra.pop("boxes", None),
                stability=extra.pop("stability", None),
            ),
            **extra,
        )

    # --- detect then segment ------------------------------------------------------------------------
    def detect_then_segment(
        self,
        image: Any,
        boxes_from: str = "object-detection",
        boxes_model: str | None = None,
        boxes_conf: float | None = None,
    ) -> SegmentationResult:
        """Boxes from the ``boxes_from`` task (through the registry) as prompts: one labelled mask each."""
        return self._detect(boxes_from, boxes_model, boxes_conf, self.set_image(image))

    def _detect(
        self, boxes_from: str, boxes_model: str | None, boxes_conf: float | None, hit: bool
    ) -> SegmentationResult:
        boxes, names, confs = self._detections(boxes_from, boxes_model, boxes_conf)
        if len(boxes) == 0:
            return self._result("detect", self._no_masks(), np.zeros(0, np.float32), None, hit)
        masks, scores, logits = self.predict_boxes(boxes)
        return self._result("detect", masks, scores, logits, hit, names=names, det_conf=confs, boxes=boxes)

    def _detections(self, task: str, model: str | None, conf: float | None):
        import deepapps
        from deepapps.registry import registry

        if registry.task(task).name == TASK:
            raise InputError("--boxes-from needs a detection task such as object-detection, not segmentation")
        detector = deepapps.load(task, model, device=self.device)
        found = detector(self.image, **({} if conf is None else {"conf": conf}))
        detections = getattr(found, "detections", None)
        if detections is None:
            raise InputError(f"task {task!r} gives no boxes; use a detection task such as object-detection")
        boxes = np.asarray([d.xyxy for d in detections], dtype=np.float64).reshape(-1, 4)
        return boxes, [d.class_name for d in detections], [float(d.conf) for d in detections]

    # --- the runner call ----------------------------------------------------------------------------
    def run_one(
        self,
        item: Any,
        points: Any,
        labels: Any,
        box: Any,
        multimask: bool | None,
        mask_input: Any,
        boxes_from: str | None,
        boxes_model: str | None,
        boxes_conf: float | None,
        points_per_side: int | None,
        pred_iou_thresh: float | None,
        stability_thresh: float | None,
        iou: float | None,
        remask: bool | None,
        out: Path | None,
    ) -> SegmentationResult:
        t0 = time.perf_counter()
        prompted = points is not None or box is not None or mask_input is not None
        if boxes_from and prompted:
            raise InputError("--boxes-from takes its boxes from the detector; leave out --points and --box")
        if labels is not None and points is None:
            raise InputError("labels were given without points; give --points x,y,... with them")
        with self.lock:  # set_image and the decoding belong together
            hit = self.set_image(item)
            t1 = time.perf_counter()
            if boxes_from:
                result = self._detect(boxes_from, boxes_model, boxes_conf, hit)
            elif prompted:
                result = self._prompted(points, labels, box, multimask, mask_input, hit)
            else:
                result = self._everything(
                    points_per_side, pred_iou_thresh, stability_thresh, iou, remask, hit
                )
        t2 = time.perf_counter()
        self.finish(result, item, {"embed": (t1 - t0) * 1e3, "decode": (t2 - t1) * 1e3}, started=t0)
        if out is not None:
            source = describe_input(item)
            stem = Path(source).stem if not source.startswith("<") else "mask"
            result.save_masks(out, stem=stem)
        return result

    def _prompted(
        self, points: Any, labels: Any, box: Any, multimask: bool | None, mask_input: Any, hit: bool
    ) -> SegmentationResult:
        masks, scores, logits = self.predict(points, labels, box, multimask, mask_input)
        width, height = self.image.size
        pts, labs = check_points(points, labels, width, height)
        bx = check_box(box, width, height)
        return self._result(
            "prompt",
            masks,
            scores,
            logits,
            hit,
            points=None if pts is None else [[round(float(x), 2), round(float(y), 2)] for x, y in pts],
            labels=None if labs is None else [int(v) for v in labs],
            box=None if bx is None else [round(float(v), 2) for v in bx],
        )


def make_runner(
    model: ModelRef,
    device: str,
    precision: str,
    cache_size: int,
    refine: str | None,
    refine_radius: float | None,
    refine_eps: float | None,
    zoom: str | None,
    zoom_max: float | None,
    zoom_context: float | None,
    refine_holes: float | None,
    refine_threshold: float | None,
    max_points: int | None,
    click_check: str | None,
) -> SegmentationRunner:
    """Runner factory registered in the TaskSpec (the core has resolved model, device and precision)."""
    from .loading import load_sam

    check_max_points(max_points)  # a bad value is refused before the model loads
    sam, arch, meta = load_sam(model, device)
    everything = everything_defaults(arch, meta)
    refinement = refinement_for(
        arch,
        meta,
        method=refine,
        radius=refine_radius,
        eps=refine_eps,
        holes=refine_holes,
        threshold=refine_threshold,
    )
    zoom_in = zoom_for(arch, meta, mode=zoom, max_scale=zoom_max, context=zoom_context)
    return SegmentationRunner(
        model.name,
        device,
        precision,
        sam,
        arch,
        cache_size=cache_size,
        everything=everything,
        refinement=refinement,
        zoom=zoom_in,
        max_points=max_points_for(arch, meta, max_points),
        click_check=click_check_for(arch, meta, click_check),
    )


def refinement_for(arch: Any, meta: dict[str, Any], **given: Any) -> Refinement:
    """A model's mask refinement: none for the official sizes (SAM as published), the guided filter chosen
    on scenes val renders for the small models; a checkpoint's ``refine`` metadata, then the caller's
    values (those not None), win."""
    return _setting(Refinement, "refine", "mask refinement", REFINE_SAM, REFINE_SMALL, arch, meta, given)


def zoom_for(arch: Any, meta: dict[str, Any], **given: Any) -> Zoom:
    """A model's zoom-in: off for the official sizes (SAM as published), on for the small models (settings
    chosen on scenes val renders); a checkpoint's ``zoom`` metadata, then the caller's values, win."""
    return _setting(Zoom, "zoom", "zoom-in", ZOOM_SAM, ZOOM_SMALL, arch, meta, given)


def max_points_for(arch: Any, meta: dict[str, Any], given: int | None) -> int:
    """How many points a model's decoder is given along with ``mask_input`` (0: all): every point for the
    official sizes (SAM as published); for the small models, which were trained on a first prompt and one
    corrective click and lose what later clicks won when given them all, the first click and the latest
    ones, MAX_POINTS_SMALL in all (chosen on scenes val renders). A checkpoint's ``max_points`` metadata,
    then the caller's value, win."""
    from .arch import official_name

    if given is not None:
        check_max_points(given)
        return given
    value = meta.get("max_points", 0 if official_name(arch) else MAX_POINTS_SMALL)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value == 1:
        raise CheckpointError(f"the checkpoint's max_points must be {MAX_POINTS_RULE}, not {value!r}")
    return value


def click_check_for(arch: Any, meta: dict[str, Any], given: str | None) -> str:
    """Which mask a corrective click keeps (clicks.py): SAM's single output for the official sizes (SAM as
    published), for the small models CLICK_CHECK_SMALL (chosen on scenes val renders). A checkpoint's
    ``click_check`` metadata, then the caller's value, win."""
    from .arch import official_name

    if given is not None:
        return given  # the option's choices have checked it
    value = meta.get("click_check", CLICK_CHECK_OFF if official_name(arch) else CLICK_CHECK_SMALL)
    if value not in CLICK_CHECKS:
        raise CheckpointError(
            f"the checkpoint's click_check must be one of {', '.join(CLICK_CHECKS)}, not {value!r}"
        )
    return value


MAX_POINTS_RULE = "0 (every point) or at least 2 (the first click and the latest ones)"


def check_max_points(given: int | None) -> None:
    """Refuse a caller's ``max_points`` of 1 (the option's range has already refused negatives)."""
    if given == 1:
        raise InputError(f"--max-points must be {MAX_POINTS_RULE}, not 1")


def _setting(
    cls: Any,
    key: str,
    what: str,
    official: dict[str, Any],
    small: dict[str, Any],
    arch: Any,
    meta: dict[str, Any],
    given: dict[str, Any],
) -> Any:
    """A dataclass setting of a model: its kind's defaults, then the checkpoint's ``key`` metadata, then the
    caller's values that are not None."""
    from .arch import official_name

    base = dict(official if official_name(arch) else small)
    own = meta.get(key) or {}
    known = set(cls.__dataclass_fields__)
    if not isinstance(own, dict) or set(own) - known:
        raise CheckpointError(
            f"the checkpoint's {key!r} metadata must be a mapping of {sorted(known)}, not {own!r}"
        )
    base.update(own)
    base.update({k: v for k, v in given.items() if v is not None})
    try:
        return cls(**base)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"the checkpoint's {what} is unusable: {exc}") from exc


def everything_defaults(arch: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """A model's segment-everything filters: SAM's own for the official sizes, the small-model ones
    (measured on scenes val renders) for the rest; a checkpoint's ``everything`` metadata wins."""
    from .arch import official_name

    base = EVERYTHING_SAM if official_name(arch) else EVERYTHING_SMALL
    own = meta.get("everything") or {}
    return {k: own.get(k, v) for k, v in base.items()}
