"""Rollout videos: highway-env's rendered frames with the live metrics written over them, saved as
MP4 (H.264 through imageio-ffmpeg) or GIF (Pillow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepapps import InputError

VIDEO_SUFFIXES = (".mp4", ".gif")


def check_record_path(path: str | Path) -> Path:
    """A writable video path with a supported suffix (checked before any episode runs)."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise InputError(f"--record {path}: use a .mp4 or .gif file name")
    if path.is_dir():
        raise InputError(f"--record {path}: is a folder; give a file name ending in .mp4 or .gif")
    return path


def overlay_lines(log) -> list[str]:
    """The text shown on a frame: the state now and the running metrics of the episode so far."""
    s = log.states[-1]
    head = f"{log.task} [{log.variant}] seed {log.seed}  step {log.steps}"
    if log.task == "lane-keeping":
        offs = np.abs([x["lateral_offset"] for x in log.states])
        return [
            head,
            f"offset {s['lateral_offset']:+.2f} m   mean |offset| {offs.mean():.2f} m",
            f"steering {np.degrees(s['steering']):+.1f} deg   lane {s['lane_width']:.1f} m",
        ]
    if log.task == "adaptive-cruise":
        headway = "-" if not np.isfinite(s["headway"]) else f"{s['headway']:.2f} s"
        return [
            head,
            f"speed {s['speed']:.1f} m/s   lead {s['lead_speed']:.1f} m/s   gap {s['gap']:.1f} m",
            f"headway {headway} (set {s['time_gap']:.2f} s)   accel {s['accel']:+.2f} m/s2"
            + ("   COLLISION" if s["crashed"] else ""),
        ]
    if log.task == "lane-change":
        lanes = [x["lane"] for x in log.states]
        changes = int(np.count_nonzero(np.diff(lanes))) if len(lanes) > 1 else 0
        return [
            head,
            f"speed {s['speed']:.1f} m/s   lane {s['lane']}   lane changes {changes}"
            + ("   CRASH" if s["crashed"] else ""),
        ]
    return [
        head,
        f"speed {s['speed']:+.1f} m/s"
        + ("   PARKED" if s.get("success") else "")
        + ("   COLLISION" if s["crashed"] else ""),
    ]


def overlay(frame: np.ndarray | None, log, inset: np.ndarray | None = None) -> np.ndarray:
    """``frame`` with a dark text band on top holding :func:`overlay_lines` (and an optional inset)."""
    from PIL import Image, ImageDraw

    if frame is None:
        frame = np.full((150, 600, 3), 90, dtype=np.uint8)
    image = Image.fromarray(np.ascontiguousarray(frame[..., :3]))
    lines = overlay_lines(log)
    band = 14 * len(lines) + 6
    canvas = Image.new("RGB", (image.width, image.height + band), (20, 20, 20))
    canvas.paste(image, (0, band))
    draw = ImageDraw.Draw(canvas)
    for i, text in enumerate(lines):
        draw.text((6, 3 + 14 * i), text, fill=(255, 255, 255))
    if inset is not None:
        small = Image.fromarray(inset).convert("RGB")
        canvas.paste(small, (canvas.width - small.width - 4, band + 4))
    return np.asarray(canvas)


def write_video(frames: list[np.ndarray], path: str | Path, fps: int = 10) -> Path:
    """Write ``frames`` (HxWx3 uint8, all the same size) to ``path`` (.mp4 or .gif)."""
    path = check_record_path(path)
    if not frames:
        raise InputError("no frames to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    frames = [np.ascontiguousarray(f[: h - h % 2, : w - w % 2, :3]) for f in frames]
    if path.suffix.lower() == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
        return path
    import imageio.v2 as imageio

    with imageio.get_writer(
        str(path),
        fps=fps,
        codec="libx264",
        macro_block_size=2,
        ffmpeg_log_level="error",
        pixelformat="yuv420p",
    ) as writer:
        for f in frames:
            writer.append_data(f)
    return path
