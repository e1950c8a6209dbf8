"""The Streamlit page of the colour-palette task (registered with ``register_ui_pages``).

streamlit is imported inside ``render`` so that listing plugins never imports it. The page
reuses deepapps' shared widgets, so it looks like every other task page.
"""

from __future__ import annotations


def sample_image():
    """A built-in demo picture (sky, sun, grass, soil bands) so the page works without an upload."""
    import numpy as np
    from PIL import Image

    h, w = 120, 180
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[:60] = (110, 170, 230)  # sky
    img[60:90] = (70, 150, 60)  # grass
    img[90:] = (120, 80, 50)  # soil
    yy, xx = np.mgrid[:h, :w]
    img[(yy - 25) ** 2 + (xx - 140) ** 2 < 15**2] = (250, 210, 60)  # sun
    return Image.fromarray(img)


def render() -> None:
    import streamlit as st

    from deepapps_ui import widgets

    st.title("🎨 Colour palette")
    st.caption(
        "The dominant colours of an image, found by k-means over its pixels (deepapps-example plugin)."
    )
    model = widgets.model_picker("color-palette", key="palette-model")
    col1, col2 = st.columns(2)
    k = col1.slider("Colours (k)", min_value=1, max_value=16, value=5, key="palette-k")
    seed = col2.number_input("Seed", min_value=0, value=0, step=1, key="palette-seed")
    upload = st.file_uploader("Image", type=["png", "jpg", "jpeg", "webp", "bmp"], key="palette-image")
    image = upload.getvalue() if upload is not None else sample_image()
    if upload is None:
        st.caption("No upload: using the built-in sample picture.")
    runner = widgets.cached_runner("color-palette", model)
    result = runner(image, k=int(k), seed=int(seed))
    st.markdown(" ".join(f"`{c}` {f:.0%}" for c, f in zip(result.colors, result.fractions, strict=True)))
    widgets.result_view(result)
