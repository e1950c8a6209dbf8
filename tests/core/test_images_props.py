"""Property tests: whatever reaches the image loader, it returns an RGB image or raises InputError."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from deepapps import InputError
from deepapps.runtime.images import load_image

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns on corrupt EXIF and tags
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _loads_or_refuses(source) -> None:
    """The one contract: an RGB image of a sane size, or an InputError (a one-line message)."""
    try:
        img = load_image(source)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert img.mode == "RGB" and img.size[0] > 0 and img.size[1] > 0


def _encoded(fmt: str, size: tuple[int, int], mode: str, seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    img = Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels, mode=mode)
    if fmt == "JPEG" and mode == "RGBA":
        img = img.convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


@FAST
@given(st.binary(min_size=0, max_size=2048))
def test_random_bytes(data):
    _loads_or_refuses(data)


@FAST
@given(
    st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]),
    st.tuples(st.integers(1, 24), st.integers(1, 24)),
    st.sampled_from(["L", "RGB", "RGBA"]),
    st.integers(0, 2**16),
    st.floats(0.0, 1.0),
)
def test_truncated_encoded_images(fmt, size, mode, seed, keep):
    data = _encoded(fmt, size, mode, seed)
    _loads_or_refuses(data[: int(len(data) * keep)])


@FAST
@given(
    st.sampled_from(["PNG", "JPEG", "TIFF"]),
    st.integers(0, 2**16),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_corrupted_encoded_images(fmt, seed, flips):
    data = bytearray(_encoded(fmt, (16, 12), "RGB", seed))
    for position, value in flips:
        data[position % len(data)] = value
    _loads_or_refuses(bytes(data))


DTYPES = st.sampled_from(
    [np.uint8, np.uint16, np.int8, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_,
     np.complex64, np.dtype("U3"), np.dtype("S2"), np.dtype("datetime64[s]"), np.dtype("m8[s]")]
)  # fmt: skip
SIDES = st.integers(0, 6)
IMAGE_LIKE = st.one_of(st.tuples(SIDES, SIDES), st.tuples(SIDES, SIDES, st.integers(1, 5)))
SHAPES = st.one_of(IMAGE_LIKE, IMAGE_LIKE, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6))


@FAST
@given(hnp.arrays(DTYPES, SHAPES))
def test_random_arrays_of_random_dtypes_and_shapes(array):
    _loads_or_refuses(array)


@FAST
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=5)))
def test_float_arrays_with_any_values(array):
    # NaN, inf, huge and negative values included: refused or mapped into 0..255, never an overflow
    _loads_or_refuses(array)


@pytest.mark.parametrize("dtype", [object, np.dtype([("a", np.uint8), ("b", np.float32)])])
def test_object_and_structured_arrays(dtype):
    with pytest.raises(InputError, match="not an image"):
        load_image(np.zeros((3, 3), dtype=dtype))
