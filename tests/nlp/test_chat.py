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
    import torch

    a = tiny_chat("Tell me about refunds").text
    b = tiny_chat("Tell me about refunds").text
    assert a == b

    def sample(seed):
        return tiny_chat("Tell me about refunds", temperature=1.0, top_p=0.95, seed=seed, max_tokens=10).text

    state = torch.random.get_rng_state()
    s7 = sample(7)
    assert torch.equal(torch.random.get_rng_state(), state)  # a seeded reply leaves the global RNG alone
    assert sample(7) == s7
    by_seed = {seed: sample(seed) for seed in (7, 8, 9, 10)}
    assert by_seed[7] == s7
    assert len(set(by_seed.values())) == 4  # each seed gives its own reply
    assert a not in by_seed.values()  # and none of them is the greedy one
    assert tiny_chat("Tell me about refunds", temperature=1.0, top_p=0, seed=3).text == a  # top_p 0 = greedy
    for tiny in (1e-6, 1e-40, 5e-324):  # logits / T would overflow to inf and NaN probabilities
        assert tiny_chat("Tell me about refunds", temperature=tiny).text == a


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
    long_turn = "refunds receipt store " * 8
    messages = [{"role": "system", "content": "Be brief."}]
    for i in range(12):
        messages += [
            {"role": "user", "content": f"{i} {long_turn}"},
            {"role": "assistant", "content": long_turn},
        ]
    messages.append({"role": "user", "content": "last question"})
    r = tiny_chat(messages, max_tokens=8)
    assert r.messages[:-1] == messages  # the result keeps the whole conversation
    kept = tiny_chat.prepare(messages, max_tokens=8)["messages"]  # what the model was given
    history = kept[1:-1]
    assert 0 < r.trimmed_messages < 24 and len(history) == 24 - r.trimmed_messages
    assert r.prompt_tokens == len(tiny_chat._encode(kept)) and r.prompt_tokens + 8 <= window
    assert kept[0] == {"role": "system", "content": "Be brief."}
    assert kept[-1]["content"] == "last question"
    # the newest history survives, in order, and the oldest goes first
    assert history == messages[-1 - len(history) : -1]
    assert history[-1]["content"] == long_turn and history[-2]["content"].startswith("11 ")
    # minimal: keeping one more (older) message would not have fitted
    one_more = [kept[0], messages[-2 - len(history)], *history, kept[-1]]
    assert len(tiny_chat._encode(one_more)) + 8 > window


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
    with pytest.raises(InputError, match="--max-tokens: 0 is below the minimum 1"):
        tiny_chat("hi", max_tokens=0)
    with pytest.raises(InputError, match="--preset: 'pirate' is not one of assistant"):
        tiny_chat("hi", preset="pirate")
    with pytest.raises(InputError, match="did you mean --temperature"):
        tiny_chat("hi", temprature=0.5)
    with pytest.raises(InputError, match="did you mean --max-tokens"):
        tiny_chat.stream_reply("hi", max_token=3)
    with pytest.raises(InputError, match="stop string cannot be empty"):
        tiny_chat.stream_reply("hi", stop=[""])


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

    from deepapps import resolve_model
    from deepapps_nlp.models import load_model

    assert torch.is_grad_enabled()
    load_model(resolve_model("chat", str(tiny_model_dir)), "cpu")
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


# the v2 contract: declared options, checks before any load, ModelRef, precision, timings -----------
def _cli(args, home=None):
    from click.testing import CliRunner

    from deepapps.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    env = {"DEEPAPPS_HOME": str(home)} if home else {}
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


@pytest.fixture()
def no_model_load(monkeypatch):
    """Any model load fails the test: the command must refuse before it."""
    import deepapps
    from deepapps_nlp import models

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(models, "get_model", refuse)
    deepapps.clear_cache()


def test_chat_declares_its_options_per_verb():
    import deepapps

    spec = deepapps.registry.task("chat")
    run = {o.name: o for o in spec.options}
    assert spec.input_kind == "text" and spec.precisions == ("fp32", "bf16")
    assert {n for n, o in run.items() if o.when == "load"} == {
        "docs", "retriever", "doc_chunks", "chunk_words", "chunk_overlap", "context_window", "engine",
    }  # fmt: skip
    assert {"temperature", "top_p", "max_tokens", "seed", "stop", "preset", "system"} <= set(run)
    assert run["stop"].multiple and run["preset"].choices[:2] == ("assistant", "programming")
    assert (run["temperature"].min, run["temperature"].max, run["temperature"].default) == (0, 2, 0.7)
    assert {o.name for o in spec.eval_options} >= {"category", "faq_answers", "qa", "retriever", "max_tokens"}
    assert {o.name for o in spec.bench_options} >= {"repeats", "threads", "server", "max_tokens"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "chat", ""], "empty input text"),
        (["run", "chat", "hi", "--temprature", "0"], "did you mean --temperature"),
        (["run", "chat", "hi", "--top-p", "1.5"], "option --top-p: 1.5 is above the maximum 1"),
        (["run", "chat", "hi", "--docs", "no/such/folder"], "option --docs: no/such/folder does not exist"),
        (["run", "chat", "hi", "--retriever", "embed"], "give --docs FOLDER as well"),
        (["run", "chat", "hi", "--preset", "pirate"], "'pirate' is not one of assistant"),
        (["chat", "ask", ""], "the message is empty"),
        (["chat", "ask", "hi", "--max-tokens", "0"], "option --max-tokens: 0 is below the minimum 1"),
        (["chat", "ask", "hi", "--seed", "x"], "option --seed: expected a whole number"),
        (["chat", "ask", "hi", "--conversation", "abc123"], "no conversation"),
        (["chat", "ask", "hi", "--model", "smollm3"], "unknown model for task 'chat' 'smollm3'"),
        (["chat", "shell", "--temperature", "3"], "option --temperature: 3.0 is above the maximum 2"),
        (["chat", "serve", "--chunk-overlap", "200", "--docs", "."], "--chunk-overlap must be smaller"),
        (["eval", "chat", "--category", "poetry"], "'poetry' is not a category of chat-qa"),
        (["eval", "chat", "--k", "0"], "option --k: 0 is below the minimum 1"),
        (["bench", "chat", "--repeats", "0"], "option --repeats: 0 is below the minimum 1"),
    ],
)
def test_mistakes_are_refused_before_any_model_loads(args, message, no_model_load, home):
    r = _cli(args, home)
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output


def test_docs_is_a_load_time_option_of_run_and_load(tiny_model_dir, tmp_path, home):
    import json

    import deepapps

    docs = tmp_path / "faq"
    docs.mkdir()
    (docs / "refunds.md").write_text("# Refunds\nRefunds are possible within 30 days with a receipt.\n")
    (docs / "hours.md").write_text("# Opening hours\nWe open at 9 am.\n")
    r = _cli(["run", "chat", "Can I get a refund?", "--docs", str(docs), "--model", str(tiny_model_dir),
              "--device", "cpu", "--temperature", "0", "--max-tokens", "3", "--json"], home)  # fmt: skip
    assert r.exit_code == 0, r.output
    (result,) = json.loads(r.output)
    assert result["citations"][0]["source"] == "refunds.md" and result["source"] == "Can I get a refund?"
    assert set(result["timings"]) == {"load", "prepare", "generate", "streamer_overhead", "total"}
    runner = deepapps.load("chat", str(tiny_model_dir), device="cpu", docs=docs, doc_chunks=1, max_tokens=2)
    plain = deepapps.load("chat", str(tiny_model_dir), device="cpu")
    assert runner.index is not None and plain.index is None
    assert runner.loaded is plain.loaded  # one copy of the weights for both
    out = runner("Can I get a refund?")
    assert [c["source"] for c in out.citations] == ["refunds.md"] and out.completion_tokens <= 2


def test_constructor_checks_options_and_shares_the_loaded_model(tiny_model_dir, tiny_chat, no_model_load):
    from deepapps import OptionError
    from deepapps_nlp import Chat

    with pytest.raises(OptionError, match="did you mean --temperature"):
        Chat(str(tiny_model_dir), "cpu", temprature=0)
    with pytest.raises(InputError, match="does not exist"):
        Chat(str(tiny_model_dir), "cpu", docs="no/such/folder")
    assert tiny_chat.defaults.temperature == 0 and tiny_chat.defaults.max_tokens == 12  # its own defaults
    assert tiny_chat.defaults.top_p == 0.9  # the declared one


def test_with_docs_is_a_view_on_the_same_model(tiny_chat, tmp_path):
    from deepapps_nlp.retrieval import DocIndex

    view = tiny_chat.with_docs(DocIndex.from_texts({"a.md": "Refunds within 30 days."}), doc_chunks=1)
    assert view.loaded is tiny_chat.loaded and tiny_chat.index is None
    assert view("refunds?").citations[0]["source"] == "a.md"
    assert tiny_chat("refunds?").citations == []


def test_precision_is_the_one_the_core_passes(tiny_model_dir):
    import torch

    from deepapps_nlp import Chat

    chat = Chat(str(tiny_model_dir), "cpu", "bf16", temperature=0, max_tokens=3)
    assert chat.precision == "bf16" and next(chat.loaded.model.parameters()).dtype == torch.bfloat16
    assert chat("hi").completion_tokens >= 1
    with pytest.raises(Exception, match="not supported by this task"):
        Chat(str(tiny_model_dir), "cpu", "fp16")


def test_no_progress_silences_transformers_loading_bar(tiny_model_dir, monkeypatch):
    from transformers.utils import logging as hf_logging

    from deepapps import resolve_model
    from deepapps_nlp.models import load_model

    monkeypatch.setenv("DEEPAPPS_NO_PROGRESS", "1")
    hf_logging.enable_progress_bar()
    try:
        load_model(resolve_model("chat", str(tiny_model_dir)), "cpu")
        assert not hf_logging.is_progress_bar_enabled()
    finally:
        hf_logging.enable_progress_bar()
