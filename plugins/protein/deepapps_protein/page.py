"""The Streamlit page of ``structure-prediction`` (registered with ``register_ui_pages``).

Paste a sequence or upload FASTA/PDB/mmCIF; see the 3D Cα trace coloured by confidence (plotly:
its JavaScript ships inside streamlit, so it works offline), the contact map and the secondary
structure; download the PDB; compare wild type and a mutant; score against an uploaded reference.
"""

from __future__ import annotations

TASK = "structure-prediction"
# ubiquitin (PDB 1UBQ), a classic 76-residue example
SAMPLE = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"
STRUCTURE_TYPES = ["pdb", "ent", "cif", "mmcif", "gz"]


def trace_figure(result):
    """A plotly 3D Cα trace, each residue coloured by its pLDDT (0-100)."""
    import numpy as np
    import plotly.graph_objects as go

    ca = np.asarray(result.ca)
    text = [
        f"{i + 1} {aa} {s} pLDDT {p:.0f}"
        for i, (aa, s, p) in enumerate(zip(result.sequence, result.ss, result.plddt, strict=True))
    ]
    fig = go.Figure(
        go.Scatter3d(
            x=ca[:, 0],
            y=ca[:, 1],
            z=ca[:, 2],
            mode="lines+markers",
            text=text,
            hoverinfo="text",
            marker={
                "size": 4,
                "color": result.plddt,
                "colorscale": "RdYlBu",
                "cmin": 0,
                "cmax": 100,
                "colorbar": {"title": "pLDDT"},
            },
            line={"color": "#999999", "width": 3},
        )
    )
    fig.update_layout(
        height=460,
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        title=f"{result.id}: Cα trace",
        scene={"aspectmode": "data"},
    )
    return fig


def contact_figure(result):
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Heatmap(z=result.contacts, colorscale="Greys", zmin=0, zmax=1, colorbar={"title": "P(d<8Å)"})
    )
    fig.update_layout(
        height=380,
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        title="Contact map",
        yaxis={"autorange": "reversed"},
    )
    return fig


def _input(st):
    """('sequence', text) or ('upload', UploadedFile), or (None, None)."""
    mode = st.radio("Input", ["Sequence", "Upload FASTA / PDB / mmCIF"], horizontal=True, key="prot-mode")
    if mode == "Sequence":
        text = st.text_area(
            "Sequence (one-letter codes) or FASTA text", value=SAMPLE, key="prot-seq", height=100
        )
        return ("sequence", text) if text.strip() else (None, None)
    upload = st.file_uploader(
        "FASTA, PDB or mmCIF file", type=["fasta", "fa", "faa", "txt", *STRUCTURE_TYPES], key="prot-upload"
    )
    return ("upload", upload) if upload is not None else (None, None)


def show_structure(st, result, key: str) -> None:
    from deepapps_ui import widgets

    cols = st.columns(4)
    cols[0].metric("Residues", result.length)
    cols[1].metric("Mean pLDDT", f"{result.mean_plddt:.1f}")
    cols[2].metric("Helix", f"{result.ss.count('H') / max(result.length, 1):.0%}")
    cols[3].metric("Strand", f"{result.ss.count('E') / max(result.length, 1):.0%}")
    if result.reference:
        r = result.reference
        st.success(
            f"vs {r['reference']}: TM-score {r['tm_score']:.3f} · lDDT-Cα {r['lddt_ca']:.3f} · "
            f"RMSD {r['rmsd']:.2f} Å · GDT_TS {r['gdt_ts']:.3f} · TM-align {r['tm_align']:.3f}"
        )
    st.plotly_chart(trace_figure(result), key=f"{key}-trace")
    st.markdown("**Secondary structure** (H helix, E strand, - coil)")
    st.code(
        "\n".join(
            f"{result.sequence[i : i + 60]}\n{result.ss[i : i + 60]}\n" for i in range(0, result.length, 60)
        ),
        language=None,
    )
    st.plotly_chart(contact_figure(result), key=f"{key}-contacts")
    st.download_button(
        "Download PDB", result.to_pdb(), file_name=f"{result.id}.pdb", mime="chemical/x-pdb", key=f"{key}-pdb"
    )
    with st.expander("Result as JSON"):
        widgets.result_view(result, key=f"{key}-json")


def _reference_section(st, result) -> None:
    from deepapps_ui import widgets

    from .scoring import score
    from .structure_io import read_structure

    ref = st.file_uploader(
        "Reference structure (PDB/mmCIF) to score the prediction against",
        type=STRUCTURE_TYPES,
        key="prot-ref",
    )
    if ref is None:
        return
    with widgets.page_errors("Scoring"), widgets.upload_as_file(ref) as path:
        scores = score(result.prediction, read_structure(path))
        st.markdown(widgets.md_table(["metric", "value"], [[k, v] for k, v in scores.items()]))


def _variant_section(st, runner, result, key: str) -> None:
    from deepapps_ui import widgets

    from .results import compare_predictions
    from .sequences import apply_mutations

    st.subheader("Variant: wild type vs mutant")
    text = st.text_input(
        f"Point mutations (1-based, comma-separated), e.g. {result.sequence[1]}2A", key="prot-mutations"
    )
    if not text.strip():
        return
    with widgets.page_errors("Variant"):
        mutant_seq, muts = apply_mutations(result.sequence, [m for m in text.split(",") if m.strip()])
        tag = "_".join(str(m) for m in muts)
        mutant = runner(f">{result.id}_{tag}\n{mutant_seq}")
        variant = compare_predictions(result.id, result, mutant, [str(m) for m in muts])
        st.info(variant.summary())
        st.image(variant.plot(), caption="per-residue displacement and confidence change")
        st.download_button(
            "Download mutant PDB",
            mutant.to_pdb(),
            file_name=f"{result.id}_{tag}.pdb",
            key=f"{key}-mutant-pdb",
        )


def render() -> None:
    import streamlit as st

    from deepapps_ui import widgets

    st.title("🧬 Protein structure prediction")
    st.caption(
        "Sequence → 3D Cα trace, confidence (pLDDT-like), secondary structure and contact map. "
        "The bundled model was trained here on 34 PDB chains: see its card for how far it is from AlphaFold2."
    )
    model = widgets.model_picker(TASK, key="prot-model")
    kind, value = _input(st)
    if kind is None:
        st.info("Paste a sequence or upload a file.")
        return
    with widgets.page_errors("Prediction"):
        runner = widgets.cached_runner(TASK, model)
        results = widgets.run_on_input(runner, value)
        results = results if isinstance(results, list) else [results]
        choice = 0
        if len(results) > 1:
            choice = st.selectbox(
                "Record", range(len(results)), format_func=lambda i: results[i].id, key="prot-record"
            )
        result = results[choice]
        show_structure(st, result, key="prot")
        _reference_section(st, result)
        _variant_section(st, runner, result, key="prot")
