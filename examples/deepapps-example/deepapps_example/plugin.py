"""The hooks of the example plugin: one task, one builtin model, one dataset, one UI page.

deepapps imports this module through the ``deepapps`` entry point in pyproject.toml. It
must stay cheap: it only builds specs; every callable is an import string
(``"package.module:attribute"``) that deepapps resolves when the task actually runs.
"""

from __future__ import annotations

from deepapps import DatasetSpec, ModelCard, ModelSpec, Option, TaskSpec, UIPageSpec, hookimpl

TASK = "color-palette"
MAX_K = 16
K = Option("k", "int", 5, "number of colours to find", min=1, max=MAX_K)
SEED = Option("seed", "int", 0, "random seed of the k-means++ start", min=0)
MODEL = "kmeans-palette"
DATASET = "synthetic-palettes"


@hookimpl
def register_tasks(register):
    register(
        TaskSpec(
            name=TASK,
            title="Colour palette",
            domain="example",
            description="The dominant colours of an image and the share of pixels each covers (k-means).",
            inputs="image (path, bytes, PIL image or HxWx3 array)",
            outputs="colours as #rrggbb with their pixel shares, most common first; plot: palette strip",
            runner="deepapps_example.palette:make_runner",
            default_model=MODEL,
            default_dataset=DATASET,
            aliases=("palette",),
            evaluate="deepapps_example.palette:evaluate",
            bench="deepapps_example.palette:bench",
            input_kind="image",
            options=(
                K,
                SEED,
                Option("max_iter", "int", 50, "Lloyd iterations at most per start", min=1, max=1000),
                Option("n_init", "int", 3, "k-means++ starts; the best is kept", min=1, max=20),
            ),
            eval_options=(
                Option("k", "int", None, "colours to find (default: the true number of each image)",
                       min=1, max=MAX_K),
                SEED,
                Option("n", "int", 100, "images in the generated split", min=1, max=10_000),
            ),
            bench_options=(
                K,
                Option("repeats", "int", 20, "timed runs (the median is reported)", min=1, max=10_000),
            ),
        )
    )


@hookimpl
def register_models(register):
    register(
        ModelSpec(
            name=MODEL,
            task=TASK,
            source="builtin:",
            card=ModelCard(
                summary="k-means++ then Lloyd iterations over the pixels of a 160 px thumbnail (numpy only).",
                params=0,
                license="Apache-2.0",
                training_data="none: it clusters each image's own pixels at run time",
                metrics={
                    "mean_color_error_rgb": 2.351,
                    "colors_found_within_20": 0.9857,
                    "mean_share_error": 0.0034,
                    "dataset": "synthetic-palettes:test, 100 images, 420 true colours",
                },
                metrics_command="deepapps eval color-palette --json",
                training_command="(no training: nothing is learned ahead of time)",
                limitations="Clusters in RGB, not a perceptual colour space; k is chosen by the user.",
            ),
        )
    )


@hookimpl
def register_datasets(register):
    register(
        DatasetSpec(
            name=DATASET,
            task=TASK,
            loader="deepapps_example.palette:synthetic_palettes",
            splits=("train", "val", "test"),
            license="Apache-2.0 (generated)",
            description="96x96 images of 2-6 flat colour bands plus noise (sigma 16), with their true palettes.",
            size="100 images per split by default (generated from a per-split seed)",
        )
    )


@hookimpl
def register_ui_pages(register):
    register(UIPageSpec(task=TASK, title="Colour palette", render="deepapps_example.page:render", icon="🎨"))
