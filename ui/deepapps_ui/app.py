"""Entry file of the deepapps Streamlit app: ``deepapps ui`` runs ``streamlit run`` on this file.

Everything lives in importable modules so plugin pages and tests reuse it; this file only
routes. Run it directly with ``streamlit run ui/deepapps_ui/app.py``.
"""

from deepapps_ui.navigation import main

main()
