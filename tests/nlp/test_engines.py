"""Chat engines: choosing one, bad input, and feature parity of llama.cpp with transformers.

The fast tests use the tiny transformers model; the llama.cpp ones use the real default model's
GGUF (SmolLM2-135M-Instruct, Q4_1, 98 MB), pulled once into DEEPAPPS_TEST_MODELS_HOME like
tests/nlp/test_real_model.py does; at about 60 tokens/s each reply takes a fraction of a second.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

MESSAGES = [{"role": "user", "content": "What is the capital of France? Answer with one word."}]


def _cli(args, home=None):
    from click.testing import CliRunner

    from deepapps.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    env = {"DEEPAPPS_HOME": str(home)} if home else {}
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


# choosing an engine (no llama.cpp model needed) ---------------------------------------------
def test_engine_is_a_declared_load_option_of_run_eval_and_bench():
    import deepapps

    spec = deepapps.registry.task("chat")
    run = {o.name: o for o in spec.options}["engine"]
    assert (run.when, run.default, run.choices) == ("load", "auto", ("auto", "llama.cpp", "transformers"))
    assert {o.name: o.default for o in spec.eval_options}["engine"] == "auto"
    bench = {o.name: o for o in spec.bench_options}["engine"]
    assert bench.default == "all" and bench.choices == ("all", "llama.cpp", "transformers")


def test_gguf_file_finds_the_gguf_a_model_path_stands_for(tmp_path):
    from deepapps_nlp.engines import gguf_file

    pulled = tmp_path / "pulled"
    (pulled / "hf").mkdir(parents=True)
    (pulled / "hf" / "config.json").write_text("{}")
    (pulled / "m.Q4_1.gguf").write_bytes(b"GGUF")
    assert gguf_file(pulled / "m.Q4_1.gguf") == pulled / "m.Q4_1.gguf"
    assert gguf_file(pulled / "hf") == pulled / "m.Q4_1.gguf"  # a pull from before the engines
    assert gguf_file(pulled) == pulled / "m.Q4_1.gguf"
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text("{}")
    (plain / "extra.gguf").write_bytes(b"GGUF")
    assert gguf_file(plain) is None  # a transformers folder stays one
    assert gguf_file(tmp_path / "missing.gguf") is None and gguf_file(plain / "config.json") is None


def test_auto_is_transformers_for_a_folder_and_llama_cpp_refuses_it(tiny_model_dir, tiny_chat):
    from deepapps import InputError
    from deepapps.resolution import resolve_model
    from deepapps_nlp.engines import choose_engine, llama_cpp_available

    ref = resolve_model("chat", str(tiny_model_dir))
    assert choose_engine("auto", ref, "cpu") == "transformers"
    assert choose_engine("transformers", ref, "cpu") == "transformers"
    assert tiny_chat.engine == "transformers" and tiny_chat("Hi", max_tokens=2).engine == "transformers"
    assert llama_cpp_available()  # the chat-fast extra is part of the test install
    with pytest.raises(InputError, match="runs GGUF files and .* is not one; pass a .gguf file"):
        choose_engine("llama.cpp", ref, "cpu")


def test_llama_cpp_without_the_package_is_one_line_naming_the_extra(tiny_model_dir, monkeypatch, home):
    from deepapps import InputError
    from deepapps_nlp import Chat, engines

    monkeypatch.setattr(engines, "llama_cpp_available", lambda: False)
    with pytest.raises(InputError, match=r"pip install 'deepapps\[chat-fast\]'") as err:
        Chat(str(tiny_model_dir), engine="llama.cpp")
    assert "\n" not in str(err.value)
    r = _cli(["chat", "ask", "hi", "--engine", "llama.cpp", "--model", str(tiny_model_dir)], home)
    assert r.exit_code == 2 and "deepapps[chat-fast]" in r.output and "Traceback" not in r.output
    r = _cli(["chat", "ask", "hi", "--engine", "llama-cpp"], home)
    assert r.exit_code == 2 and "'llama-cpp' is not one of auto, llama.cpp, transformers" in r.output


def test_a_model_with_no_chat_template_and_no_chatml_is_refused(tmp_path, monkeypatch):
    from deepapps import InputError
    from deepapps_nlp import Chat, models
    from deepapps_nlp.testing import build_tiny_chat_model

    folder = build_tiny_chat_model(tmp_path / "base", chat_template=None)
    monkeypatch.setattr(models, "_knows_chatml", lambda tokenizer: False)
    with pytest.raises(InputError, match="has no chat template and its vocabulary has no ChatML markers"):
        Chat(str(folder), engine="transformers")


def test_pull_keeps_the_gguf_and_refuses_other_files(tmp_path):
    import deepapps
    from deepapps import ModelNotAvailableError
    from deepapps_nlp.models import prepare_gguf

    spec = deepapps.registry.model("smollm2-135m-instruct")
    good = tmp_path / "m.gguf"
    good.write_bytes(b"GGUF\x03\x00\x00\x00")
    assert prepare_gguf(spec, good, progress=False) == good
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"<html>not found</html>")
    with pytest.raises(ModelNotAvailableError, match="is not a GGUF file; run `deepapps pull"):
        prepare_gguf(spec, bad, progress=False)


def test_a_gguf_llama_cpp_cannot_load_is_a_clear_error(tmp_path):
    from deepapps import InputError
    from deepapps_nlp import Chat

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 64)
    with pytest.raises(InputError, match="llama.cpp cannot load .*broken.gguf.*try --engine transformers"):
        Chat(str(broken), engine="llama.cpp")


# the real GGUF on llama.cpp ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def gguf():
    """The default model's GGUF, pulled once into the test models folder."""
    import deepapps
    from deepapps.runtime.pull import pull
    from deepapps_nlp.engines import gguf_file

    folder = Path(
        os.environ.get("DEEPAPPS_TEST_MODELS_HOME", Path.home() / ".cache" / "deepapps-test-models")
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEEPAPPS_HOME", str(folder))
        path = gguf_file(pull(deepapps.registry.model("smollm2-135m-instruct"), progress=False))
    assert path is not None and path.suffix == ".gguf"
    return path


@pytest.fixture(scope="module")
def fast(gguf):
    from deepapps_nlp import Chat

    return Chat(str(gguf), "cpu", engine="llama.cpp", temperature=0, max_tokens=16)


@pytest.mark.slow
def test_auto_picks_llama_cpp_for_a_gguf_and_answers(gguf, fast):
    from deepapps_nlp import Chat

    chat = Chat(str(gguf), "cpu", temperature=0, max_tokens=12)
    assert chat.engine == "llama.cpp" and chat.loaded is fast.loaded  # one loaded copy per engine
    assert not chat.loaded.default_template  # the GGUF's own template
    r = chat(MESSAGES)
    assert "Paris" in r.text and r.engine == "llama.cpp" and r.finish_reason == "stop"
    assert r.prompt_tokens == len(chat.prepare(MESSAGES)["input_ids"]) > 10
    assert r.total_tokens == r.prompt_tokens + r.completion_tokens
    detail = chat.loaded.describe()
    assert detail["engine"] == "llama.cpp" and "Q4_1" in detail["weights"]


@pytest.mark.slow
def test_greedy_decoding_is_exactly_llama_cpps_own_generate(fast):
    prep = fast.prepare(MESSAGES, max_tokens=12, min_tokens=12)
    ours = list(fast.decode(prep))
    llm = fast.loaded.llm
    llm.reset()
    raw = []
    for token in llm.generate(prep["input_ids"], temp=0.0, repeat_penalty=1.0):
        raw.append(token)
        if len(raw) == len(ours):
            break
    eog = set(fast.eos_ids())
    cut = next((i for i, t in enumerate(raw) if t in eog), len(raw))  # min_tokens masked the end token
    assert ours[:cut] == raw[:cut] and len(ours) == 12


@pytest.mark.slow
def test_stream_stop_strings_and_lengths_on_llama_cpp(fast):
    stream = fast.stream_reply("Count from 1 to 20, separated by spaces.", max_tokens=24)
    pieces = list(stream)
    r = stream.result
    assert len(pieces) > 3 and "".join(pieces) == r.text and r.finish_reason == "length"
    assert r.completion_tokens == 24 and r.time_to_first_token_ms > 0
    cut = fast("Count from 1 to 20, separated by spaces.", max_tokens=24, stop=[" 5"])
    assert r.text.startswith(cut.text) and " 5" not in cut.text and cut.finish_reason == "stop"
    assert "4" in cut.text
    forced = fast(MESSAGES, max_tokens=10, min_tokens=10)
    assert forced.completion_tokens == 10  # the end token is masked before min_tokens


@pytest.mark.slow
def test_seeds_temperature_top_p_and_repetition_penalty_on_llama_cpp(fast):
    ask = "Write one sentence about cats."
    a = fast(ask, temperature=1.0, top_p=0.95, seed=7, max_tokens=12)
    b = fast(ask, temperature=1.0, top_p=0.95, seed=7, max_tokens=12)
    others = {fast(ask, temperature=1.0, top_p=0.95, seed=s, max_tokens=12).text for s in (1, 2, 3)}
    assert a.text == b.text and len(others | {a.text}) >= 2
    narrow = {fast(ask, temperature=1.0, top_p=0.0, seed=s, max_tokens=12).text for s in (1, 2)}
    assert narrow == {fast(ask, temperature=0, max_tokens=12).text}  # top_p 0 = greedy
    loop = "Repeat the word 'apple' many times."
    plain = fast(loop, temperature=0, max_tokens=24).text.split()
    penalised = fast(loop, temperature=0, max_tokens=24, repetition_penalty=1.8).text.split()
    assert penalised != plain and len(set(penalised)) / len(penalised) >= len(set(plain)) / len(plain)


@pytest.mark.slow
def test_prompt_and_token_counts_match_the_transformers_engine(gguf, fast):
    """Same template text and the same token ids on both engines (the GGUF's template)."""
    import deepapps

    ref_chat = deepapps.load("chat", str(gguf), device="cpu", engine="transformers")
    assert ref_chat.engine == "transformers"
    messages = [
        {"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": "Hello there, café owner! 👋"},
        {"role": "assistant", "content": "Hi! How can I help?"},
        {"role": "user", "content": "Name two colours."},
    ]
    assert fast.render(messages) == ref_chat.render(messages)
    ours, theirs = fast.prepare(messages), ref_chat.prepare(messages)
    assert ours["input_ids"] == theirs["input_ids"]
    ids = theirs["input_ids"]
    assert fast.loaded.detokenize(ids) == ref_chat.loaded.detokenize(ids)
    assert fast.count_tokens("naïve 東京 text") == ref_chat.count_tokens("naïve 東京 text")


@pytest.mark.slow
def test_history_trimming_and_documents_on_llama_cpp(gguf, tmp_path):
    from deepapps_nlp import Chat

    docs = tmp_path / "faq"
    docs.mkdir()
    (docs / "returns.md").write_text("Returns: shoes can be returned within 45 days with the receipt.\n")
    chat = Chat(str(gguf), "cpu", engine="llama.cpp", context_window=160, docs=docs, temperature=0)
    history = []
    for i in range(6):
        history += [{"role": "user", "content": f"Old question {i} " + "blah " * 10},
                    {"role": "assistant", "content": "An old answer " + "blah " * 10}]  # fmt: skip
    r = chat(history + [{"role": "user", "content": "Can I return shoes?"}], max_tokens=24)
    assert r.trimmed_messages > 0 and r.prompt_tokens + 24 <= 160
    assert r.citations and r.citations[0]["source"] == "returns.md"
    assert r.engine == "llama.cpp" and chat.loaded.context_window == 160


@pytest.mark.slow
def test_cancel_and_concurrent_streams_on_llama_cpp(fast):
    stream = fast.stream_reply("Tell me a long story.", max_tokens=64)
    for i, _ in enumerate(stream):
        if i == 2:
            stream.cancel()
    assert stream.result.finish_reason == "cancelled" and stream.result.completion_tokens < 64
    assert not fast.loaded.lock.locked()
    prompts = ["Name a fruit.", "Name a country.", "Name a planet."]
    solo = {p: fast(p, max_tokens=8).text for p in prompts}
    got: dict[str, str] = {}
    threads = [
        threading.Thread(target=lambda p=p: got.update({p: fast(p, max_tokens=8).text})) for p in prompts
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert got == solo  # served in turn: each stream gets its own answer


@pytest.mark.slow
def test_openai_server_plain_sse_and_disconnect_on_llama_cpp(fast):
    import httpx
    import openai

    from deepapps_nlp.loadtest import serve_in_thread
    from deepapps_nlp.server import create_app

    app = create_app({"smol": fast})
    with serve_in_thread(app) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=60)
        assert client.models.retrieve("smol").model_extra["engine"] == "llama.cpp"
        plain = client.chat.completions.create(model="smol", messages=MESSAGES, temperature=0, max_tokens=8)
        assert plain.choices[0].message.content == fast(MESSAGES, max_tokens=8).text
        assert plain.model_extra["deepapps"]["engine"] == "llama.cpp"
        chunks = client.chat.completions.create(
            model="smol", messages=MESSAGES, temperature=0, max_tokens=8, stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        parts, usage = [], None
        for chunk in chunks:
            parts += [c.delta.content or "" for c in chunk.choices]
            usage = chunk.usage or usage
        assert "".join(parts) == plain.choices[0].message.content
        assert usage.completion_tokens == plain.usage.completion_tokens
        body = {"model": "smol", "messages": [{"role": "user", "content": "Tell a long story."}],
                "max_tokens": 200, "stream": True}  # fmt: skip
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=60) as r:
            for line in r.iter_lines():
                if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                    break  # leave mid-reply
        service = app.state.service
        for _ in range(200):
            if service.cancelled and service.in_flight == 0 and not fast.loaded.lock.locked():
                break
            threading.Event().wait(0.05)
        assert service.cancelled == 1 and service.in_flight == 0
        assert service.finished[-1][1] == "cancelled" and service.finished[-1][2] < 200
