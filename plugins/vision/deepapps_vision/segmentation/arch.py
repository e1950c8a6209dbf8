"""SAM architectures: the official ViT-B/L/H and the small ones deepapps trains, one builder for all.

Every model is segment-anything's own ``Sam`` (``ImageEncoderViT`` + ``PromptEncoder`` +
``MaskDecoder`` with a ``TwoWayTransformer``); an architecture is only a set of sizes. The
official sizes are built by ``sam_model_registry``; other sizes by :func:`build_sam` with the same
classes. :func:`arch_from_state_dict` reads the sizes back from a state dict, so a checkpoint
needs no side file to be rebuilt.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from deepapps.errors import CheckpointError


@dataclass(frozen=True)
class SamArch:
    """The sizes of one SAM. Defaults are SAM ViT-B's."""

    img_size: int = 1024
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    window_size: int = 14
    global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11)
    prompt_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_heads: int = 8
    iou_head_depth: int = 3
    iou_head_hidden: int = 256
    num_multimask: int = 3
    pixel_mean: tuple[float, ...] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, ...] = (58.395, 57.12, 57.375)
    name: str = field(default="", compare=False)

    @property
    def grid(self) -> int:
        """Side of the image embedding (tokens per row)."""
        return self.img_size // self.patch_size

    @property
    def low_res(self) -> int:
        """Side of the low-resolution mask logits the decoder returns (4x the embedding)."""
        return 4 * self.grid

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["global_attn_indexes"] = list(self.global_attn_indexes)
        out["pixel_mean"] = list(self.pixel_mean)
        out["pixel_std"] = list(self.pixel_std)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamArch:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("global_attn_indexes", "pixel_mean", "pixel_std"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


VIT_B = SamArch(name="vit_b")
VIT_L = SamArch(embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23), name="vit_l")
VIT_H = SamArch(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31), name="vit_h")
OFFICIAL = {"vit_b": VIT_B, "vit_l": VIT_L, "vit_h": VIT_H}

#: The bundled model's architecture (1.1 M parameters): 192 px input, 8 px patches (a 24 x 24 embedding,
#: 96 x 96 mask logits), a 4-block ViT of width 128, and a 64-wide prompt encoder and mask decoder.
SAM_TINY = SamArch(
    img_size=192,
    patch_size=8,
    embed_dim=128,
    depth=4,
    num_heads=4,
    window_size=6,
    global_attn_indexes=(1, 3),
    prompt_dim=64,
    decoder_mlp_dim=256,
    decoder_heads=4,
    iou_head_hidden=64,
    name="sam_tiny",
)
#: A very small SAM for tests (about 0.1 M parameters): shapes and API, not quality.
SAM_TEST = SamArch(
    img_size=64,
    patch_size=8,
    embed_dim=32,
    depth=2,
    num_heads=2,
    window_size=4,
    global_attn_indexes=(1,),
    prompt_dim=32,
    decoder_mlp_dim=64,
    decoder_heads=8,
    iou_head_hidden=32,
    name="sam_test",
)
PRESETS = {"sam_tiny": SAM_TINY, "sam_test": SAM_TEST, **OFFICIAL}


def official_name(arch: SamArch) -> str | None:
    """``vit_b``/``vit_l``/``vit_h`` when ``arch`` has exactly those sizes, else None."""
    for name, known in OFFICIAL.items():
        if replace(arch, name="") == replace(known, name=""):
            return name
    return None


def build_sam(arch: SamArch):
    """A randomly initialised ``Sam`` of these sizes (official sizes through ``sam_model_registry``)."""
    from functools import partial

    import torch
    from segment_anything import sam_model_registry
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    official = official_name(arch)
    if official is not None:
        return sam_model_registry[official]()  # checkpoint=None: weights are loaded by the caller, safely
    grid = arch.grid
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=arch.img_size,
            patch_size=arch.patch_size,
            embed_dim=arch.embed_dim,
            depth=arch.depth,
            num_heads=arch.num_heads,
            mlp_ratio=arch.mlp_ratio,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=arch.global_attn_indexes,
            window_size=arch.window_size,
            out_chans=arch.prompt_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=arch.prompt_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(arch.img_size, arch.img_size),
            mask_in_chans=arch.mask_in_chans,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=arch.num_multimask,
            transformer=TwoWayTransformer(
                depth=arch.decoder_depth,
                embedding_dim=arch.prompt_dim,
                mlp_dim=arch.decoder_mlp_dim,
                num_heads=arch.decoder_heads,
            ),
            transformer_dim=arch.prompt_dim,
            iou_head_depth=arch.iou_head_depth,
            iou_head_hidden_dim=arch.iou_head_hidden,
        ),
        pixel_mean=list(arch.pixel_mean),
        pixel_std=list(arch.pixel_std),
    )
    sam.eval()
    return sam


def _count(state: dict[str, Any], pattern: str) -> int:
    regex = re.compile(pattern)
    found = {int(m.group(1)) for k in state if (m := regex.match(k))}
    return max(found) + 1 if found else 0


def arch_from_state_dict(state: dict[str, Any], decoder_heads: int = 8) -> SamArch:
    """The sizes of the SAM a state dict belongs to, read from its tensor shapes.

    Attention head counts of the decoder leave no trace in the shapes: ``decoder_heads`` (SAM's 8)
    is assumed unless the checkpoint's metadata says otherwise.
    """
    try:
        embed_dim, _, patch, _ = state["image_encoder.patch_embed.proj.weight"].shape
        grid = state["image_encoder.pos_embed"].shape[1]
        depth = _count(state, r"image_encoder\.blocks\.(\d+)\.")
        head_dim = state["image_encoder.blocks.0.attn.rel_pos_h"].shape[1]
        windows = [
            (state[f"image_encoder.blocks.{i}.attn.rel_pos_h"].shape[0] + 1) // 2 for i in range(depth)
        ]
        global_idx = tuple(i for i, w in enumerate(windows) if w == grid)
        local = [w for w in windows if w != grid]
        prompt_dim = state["image_encoder.neck.0.weight"].shape[0]
        mlp_hidden = state["image_encoder.blocks.0.mlp.lin1.weight"].shape[0]
        arch = SamArch(
            img_size=int(grid * patch),
            patch_size=int(patch),
            embed_dim=int(embed_dim),
            depth=depth,
            num_heads=int(embed_dim // head_dim),
            mlp_ratio=mlp_hidden / embed_dim,
            window_size=int(local[0]) if local else 0,
            global_attn_indexes=global_idx,
            prompt_dim=int(prompt_dim),
            mask_in_chans=int(state["prompt_encoder.mask_downscaling.3.weight"].shape[0]),
            decoder_depth=_count(state, r"mask_decoder\.transformer\.layers\.(\d+)\."),
            decoder_mlp_dim=int(state["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0]),
            decoder_heads=decoder_heads,
            iou_head_depth=_count(state, r"mask_decoder\.iou_prediction_head\.layers\.(\d+)\."),
            iou_head_hidden=int(state["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0]),
            num_multimask=int(state["mask_decoder.mask_tokens.weight"].shape[0]) - 1,
        )
    except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
        raise CheckpointError(
            f"this state dict is not a segment-anything SAM (missing or odd tensor {exc}); pass a sam_vit_b/l/h "
            "checkpoint or a deepapps segmentation model"
        ) from exc
    name = official_name(arch)
    return replace(arch, name=name or "custom")
