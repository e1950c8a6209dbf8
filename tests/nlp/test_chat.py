"""The Chat API on a tiny random model: streaming, sampling controls, stop strings, trimming, counts."""

from __future__ import annotations

import threading

import pytest

from deepapps import InputError


def test_stream_concatenates_to_result_and_counts_tokens(tiny_chat):
    stream = tiny_chat.stream_reply("Hello, who are you?")
    pieces = list(stream)
    result = stream.result
    assert len(pieces) >= 2
    assert "".join(pieces) == result.text
    prompt = (
        tiny_chat.render(
            [
                {"role": "system", "content": tiny_chat.system_prompt("assistant")},
                {"role": "user", "content": "Hello, who are you?"},
            ]
        )
        if tiny_chat.preset
        else tiny_chat.render([{"role": "user", "content": "Hello, who are you?"}])
    )
    assert result.prompt_tokens == tiny_chat.count_tokens(prompt)
    assert 1 <= result.completion_tokens <= 12
    assert result.total_tokens == result.prompt_tokens + result.completion_tokens
    assert result.finish_reason in {"stop", "length"}
    assert result.time_to_first_token_ms > 0
    assert set(result.timings) >= {"prepare", "generate", "total"}
    d = result.to_dict()
    assert d["task"] == "chat" and d["text"] == result.text and "messages" not in d


def test_greedy_is_deterministic_and_seed_reproduces_sampling(tiny_chat):
    a = tiny_chat("Tell me about refunds").text
    b = tiny_chat("Tell me about refunds").text
    assert a == b
    s1 = tiny_chat("Tell me about refunds", temperature=1.0, top_p=0.95, seed=7, max_tokens=10).text
    s2 = tiny_chat("Tell me about refunds", temperature=1.0, top_p=0.95, seed=7, max_tokens=10).text
    s3 = tiny_chat("Tell me about refunds", temperature=1.0, top_p=0.95, seed=8, max_tokens=10).text
    assert s1 == s2
    assert s1 != s3 or s1 != a


def test_max_tokens_gives_length_finish(tiny_chat):
    r = tiny_chat("Count", max_tokens=3, min_tokens=3)
    assert r.completion_tokens == 3 and r.finish_reason == "length"


def test_stop_string_cuts_reply(tiny_chat):
    full = tiny_chat("What time do you open?", max_tokens=12, min_tokens=12).text
    assert len(full) >= 4
    stop = full[2:4]
    r = tiny_chat("What time do you open?", max_tokens=12, min_tokens=12, stop=[stop])
    assert stop not in r.text
    assert full.startswith(r.text)
    assert r.finish_reason == "stop"
    assert r.text == full[: full.find(stop)]


def test_history_is_trimmed_oldest_first(tiny_chat):
    window = tiny_chat.context_window  # 256 tokens
    long_turn = "refunds receipt store " * 15
    messages = [{"role": "system", "content": "Be brief."}]
    for i in range(12):
        messages += [
            {"role": "user", "content": f"{i} {long_turn}"},
            {"role": "assistant", "content": long_turn},
        ]
    messages.append({"role": "user", "content": "last question"})
    r = tiny_chat(messages, max_tokens=8)
    assert r.trimmed_messages > 0
    assert r.prompt_tokens + 8 <= window
    kept = r.messages[:-1]
    assert kept[0] == {"role": "system", "content": "Be brief."}
    assert kept[-1]["content"] == "last question"
    # the newest history survives, the oldest goes first
    assert "11 " in "".join(m["content"] for m in kept[1:-1]) or r.trimmed_messages == 24


def test_prompt_beyond_context_window_is_refused(tiny_chat):
    with pytest.raises(InputError, match="context window"):
        tiny_chat("word " * 2000)


def test_bad_messages_are_refused(tiny_chat):
    with pytest.raises(InputError, match="role"):
        tiny_chat([{"role": "wizard", "content": "hi"}])
    with pytest.raises(InputError, match="non-empty"):
        tiny_chat.stream_reply([])
    with pytest.raises(InputError, match="last message"):
        tiny_chat.stream_reply([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    with pytest.raises(InputError, match="temperature"):
        tiny_chat("hi", temperature=5)
    with pytest.raises(InputError, match="max_tokens"):
        tiny_chat("hi", max_tokens=0)
    with pytest.raises(InputError, match="preset"):
        tiny_chat("hi", preset="pirate")


def test_presets_become_the_system_message(tiny_model_dir):
    from deepapps_nlp import PRESETS, Chat

    assert {"programming", "tutoring", "content", "customer-service"} <= set(PRESETS)
    chat = Chat(str(tiny_model_dir), preset="tutoring", temperature=0, max_tokens=2)
    r = chat("Explain fractions")
    assert r.messages[0] == {"role": "system", "content": PRESETS["tutoring"]}
    assert r.preset == "tutoring"
    r2 = chat("Write a haiku", preset="content")
    assert r2.messages[0]["content"] == PRESETS["content"]


def test_model_without_chat_template_gets_default(tmp_path):
    from deepapps_nlp import Chat
    from deepapps_nlp.models import DEFAULT_CHAT_TEMPLATE
    from deepapps_nlp.testing import build_tiny_chat_model

    folder = build_tiny_chat_model(tmp_path / "plain", chat_template=None)
    chat = Chat(str(folder), temperature=0, max_tokens=3)
    assert chat.loaded.default_template
    assert chat.tokenizer.chat_template == DEFAULT_CHAT_TEMPLATE
    text = chat.render([{"role": "user", "content": "hi"}])
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert chat("hi").completion_tokens >= 1


def test_cancel_stops_generation(tiny_chat):
    stream = tiny_chat.stream_reply("Go on and on", max_tokens=200, min_tokens=200)
    got = []
    for piece in stream:
        got.append(piece)
        if len(got) == 2:
            stream.cancel()
    assert stream.result.finish_reason == "cancelled"
    assert stream.result.completion_tokens < 50


def test_closing_the_iterator_releases_the_model(tiny_chat):
    stream = tiny_chat.stream_reply("Go on", max_tokens=200, min_tokens=200)
    it = iter(stream)
    next(it)
    it.close()  # a consumer that went away
    assert not tiny_chat.loaded.lock.locked()
    assert tiny_chat("again", max_tokens=2).completion_tokens >= 1


def test_two_threads_get_their_own_replies(tiny_chat):
    expected = {p: tiny_chat(p).text for p in ("alpha question", "beta question")}
    got = {}

    def run(p):
        got[p] = tiny_chat(p).text

    threads = [threading.Thread(target=run, args=(p,)) for p in expected for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected


def test_runner_contract_through_deepapps_load(tiny_model_dir):
    import deepapps

    runner = deepapps.load("chat", model=str(tiny_model_dir), device="cpu", temperature=0, max_tokens=4)
    results = runner(["one", "two"])
    assert len(results) == 2 and all(r.task == "chat" for r in results)
    assert results[0].model == tiny_model_dir.name


def test_complete_prompt_for_code_generation(tiny_chat):
    stream = tiny_chat.complete_prompt("def add(a, b):\n", max_tokens=5, min_tokens=5)
    text = "".join(stream)
    assert stream.result.completion_tokens == 5 and text == stream.result.text


def test_docs_retrieval_cites_chunks(tiny_model_dir, tmp_path):
    from deepapps_nlp import Chat

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "hours.md").write_text("# Opening hours\nWe open at 9 am and close at 6 pm.\n")
    (docs / "refunds.md").write_text("# Refunds\nRefunds are possible within 30 days with a receipt.\n")
    chat = Chat(str(tiny_model_dir), docs=docs, system="Be brief.", temperature=0, max_tokens=4)
    r = chat("Can I get a refund without a receipt?")
    assert r.citations and r.citations[0]["source"] == "refunds.md"
    assert r.citations[0]["n"] == 1
    assert "Refunds are possible" in r.messages[0]["content"]


def test_loading_a_model_leaves_global_grad_mode_alone(tiny_model_dir):
    import torch

    from deepapps_nlp.models import load_model

    assert torch.is_grad_enabled()
    load_model(str(tiny_model_dir), "cpu")
    assert torch.is_grad_enabled()


@pytest.mark.parametrize(
    "options",
    [
        {"temperature": 0, "max_tokens": 12, "min_tokens": 12},
        {"temperature": 0, "max_tokens": 12, "repetition_penalty": 1.3},
        {"temperature": 0.9, "top_p": 0.8, "seed": 3, "max_tokens": 12, "min_tokens": 6},
    ],
)
def test_decode_loop_matches_model_generate(tiny_chat, options):
    """The streaming loop (caller's thread, KV cache) gives model.generate's tokens exactly."""
    import torch

    prep = tiny_chat.prepare("Tell me about refunds", **options)
    ours = list(tiny_chat.decode(prep))
    ids = torch.tensor([prep["input_ids"]])
    if prep["params"].seed is not None:
        torch.manual_seed(prep["params"].seed)
    with torch.inference_mode():
        out = tiny_chat.loaded.model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), **tiny_chat.generation_kwargs(prep)
        )
    theirs = out[0, ids.shape[1] :].tolist()
    eos = set(tiny_chat.generation_kwargs(prep)["eos_token_id"] or [])
    while theirs and theirs[-1] in eos and len(theirs) > len(ours):  # generate pads after EOS
        theirs.pop()
    assert ours == theirs
    assert len(ours) >= min(options.get("min_tokens", 1), 12)


def test_stream_runs_in_the_callers_thread(tiny_chat):
    before = threading.active_count()
    stream = tiny_chat.stream_reply("Hello", max_tokens=5, min_tokens=5)
    seen = []
    for _ in stream:
        seen.append(threading.active_count())
    assert seen and max(seen) == before
