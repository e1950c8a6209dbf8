"""A tiny chat model for tests, built from scratch in under a second.

A 2-layer ``LlamaForCausalLM`` with random weights and a byte-level BPE tokenizer trained by
``tokenizers`` on a few sentences, carrying a ChatML chat template, saved with
``save_pretrained`` into a folder: it loads through exactly the same code as a real model.
"""

from __future__ import annotations

from pathlib import Path

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_CORPUS = [
    "Hello! How can I help you today?",
    "The capital of France is Paris. Two plus two is four.",
    "def add(a, b):\n    return a + b",
    "Our store opens at 9 am and closes at 6 pm, Monday to Saturday.",
    "Refunds are possible within 30 days with the receipt.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
] * 20


def build_tiny_chat_model(
    folder: str | Path,
    *,
    context_window: int = 256,
    vocab_size: int = 400,
    chat_template: str | None = CHATML,
    seed: int = 0,
) -> Path:
    """Write a tiny random Llama chat model + tokenizer into ``folder``; return the folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    if chat_template:
        fast.chat_template = chat_template
    fast.save_pretrained(str(folder))
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=context_window,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=True,
        initializer_range=0.5,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # make the end token unlikely so replies have some length
        model.model.embed_tokens.weight[fast.eos_token_id].mul_(0.0)
    model.save_pretrained(str(folder), safe_serialization=True)
    return folder
