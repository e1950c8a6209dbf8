"""deepapps_ui: the Streamlit app of deepapps (``deepapps ui``).

The app (``app.py``) is a thin entry file; :mod:`deepapps_ui.navigation` builds one page per
registered task with ``st.navigation`` (the plugin's own page from ``register_ui_pages``, else
:mod:`deepapps_ui.generic`), and :mod:`deepapps_ui.widgets` holds the pieces plugin pages reuse:
model picker, model card, pull button, input widgets, cached runner and result view.
"""

from __future__ import annotations

from pathlib import Path

APP_PATH = Path(__file__).with_name("app.py")

__all__ = ["APP_PATH"]
