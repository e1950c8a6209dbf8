"""AppTest of the structure-prediction page: sample sequence, 3D trace, contact map, PDB, variant."""

from __future__ import annotations

import json

APP_TIMEOUT = 240  # model load + prediction on a shared 2-core machine


def _page():
    from deepapps_protein.page import render

    render()


def test_page_predicts_the_sample_and_compares_a_mutant():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_page, default_timeout=APP_TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value.endswith("Protein structure prediction")
    labels = [m.label for m in at.metric]
    assert labels[:2] == ["Residues", "Mean pLDDT"] and at.metric[0].value == "76"
    charts = at.get("plotly_chart")
    assert len(charts) == 2
    trace = json.loads(charts[0].proto.spec)["data"][0]
    assert trace["type"] == "scatter3d" and len(trace["text"]) == 76 and "pLDDT" in trace["text"][0]
    assert any("HHH" in c.value or "EEE" in c.value for c in at.code)
    assert at.get("download_button")
    at.text_input(key="prot-mutations").set_value("I3A").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("I3A" in i.value and "max displacement" in i.value for i in at.info)
    at.text_input(key="prot-mutations").set_value("W3A").run()
    assert any("residue 3 is I, not W" in e.value for e in at.error)
    at.text_area(key="prot-seq").set_value("MKTB").run()
    assert any("'B' at 4" in e.value for e in at.error)
