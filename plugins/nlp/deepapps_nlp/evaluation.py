"""``deepapps eval chat`` and ``deepapps bench chat``.

Eval: a bundled question set with automatically checkable answers (facts, arithmetic,
format following; greedy decoding) plus retrieval recall@k on a bundled customer-service
FAQ (questions written before the index was run, each labelled with the phrase that answers it).

Bench: tokens/s and time to first token through the Chat API and through the HTTP server
(``deepapps chat serve`` started in its own process, as users run it), against the engine's own
library on the same prompt token ids, interleaved in one run; every path generates exactly
``max_tokens`` tokens. Each engine that can run the model is measured (``--engine all``): the
transformers engine against raw ``model.generate`` with the same generation arguments, the
llama.cpp engine against raw ``llama_cpp.Llama.generate`` on the same GGUF (greedy). On the
transformers engine, ``streams`` requests are also timed one at a time against all together
through continuous batching (:func:`deepapps_nlp.batching.add_stream_figures`).
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

from deepapps import BenchReport, EvalReport, InputError

from .plugin import (
    BENCH_MAX_TOKENS,
    BENCH_PROMPT,
    BENCH_REPEATS,
    BENCH_STREAMS,
    ENGINE,
    EVAL_K,
    EVAL_MAX_TOKENS,
    RETRIEVER,
)

DATA = Path(str(resources.files("deepapps_nlp").joinpath("data")))


def load_chat_qa(split: str = "test") -> list[dict[str, Any]]:
    """The bundled question set (one split, ``test``)."""
    with open(DATA / "chat_qa.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


CHECK_TYPES = ("contains", "number", "regex", "json")


def load_questions(dataset: str | Path | None = "chat-qa") -> tuple[str, list[dict[str, Any]]]:
    """``(name, questions)`` for ``--dataset``: ``chat-qa`` (bundled) or a JSONL file of your own.

    Each line of a file is ``{"question": ..., "check": {"type": ..., ...}}`` with optional
    ``id`` and ``category``; check types are those of :func:`score`.
    """
    if dataset in (None, "", "chat-qa"):
        return "chat-qa", load_chat_qa()
    path = Path(str(dataset)).expanduser()
    if not path.is_file():
        raise InputError(
            f"unknown chat dataset {str(dataset)!r}: use 'chat-qa' (bundled) or the path of a JSONL file "
            'with one {"question": ..., "check": {"type": "contains", "any": [...]}} object per line'
        )
    items = []
    with open(path, encoding="utf-8") as fh:
        for no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{no}: not valid JSON ({exc.msg}); fix that line") from exc
            check = item.get("check") if isinstance(item, dict) else None
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("question"), str)
                or not isinstance(check, dict)
            ):
                raise InputError(f'{path}:{no}: each line needs a "question" string and a "check" object')
            if check.get("type") not in CHECK_TYPES:
                raise InputError(
                    f"{path}:{no}: check type {check.get('type')!r} is not one of {', '.join(CHECK_TYPES)}"
                )
            item.setdefault("id", f"{path.stem}-{no}")
            item.setdefault("category", "questions")
            items.append(item)
    if not items:
        raise InputError(f"{path} holds no questions")
    return path.name, items


def load_faq(split: str = "test") -> dict[str, Any]:
    """``{"folder": FAQ documents folder, "questions": [{question, source, key}]}``."""
    with open(DATA / "faq_questions.jsonl", encoding="utf-8") as fh:
        questions = [json.loads(line) for line in fh if line.strip()]
    return {"folder": DATA / "faq", "questions": questions}


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def score(answer: str, check: dict[str, Any]) -> bool:
    """Whether ``answer`` passes ``check`` (contains / number / regex / json)."""
    kind = check["type"]
    text = answer.strip()
    if kind == "contains":  # case-insensitive
        return any(a.lower() in text.lower() for a in check["any"])
    if kind == "number":  # the last number in the reply is its answer ("2 + 3 = 5" -> 5)
        numbers = _NUMBER.findall(text.replace(",", ""))
        return bool(numbers) and float(numbers[-1]) == float(check["value"])
    if kind == "regex":
        flags = re.IGNORECASE if "i" in check.get("flags", "") else 0
        return re.search(check["pattern"], text, flags) is not None
    if kind == "json":
        body = text.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
        try:
            return json.loads(body) == check["equals"]
        except json.JSONDecodeError:
            return False
    raise InputError(f"unknown check type {kind!r}")


def retrieval_recall(k: int = EVAL_K, index: Any = None, retriever: str = RETRIEVER) -> dict[str, float]:
    """recall@1 and recall@k on the bundled FAQ: a hit is a retrieved chunk containing the answer phrase."""
    from .retrieval import DocIndex

    faq = load_faq()
    index = index or DocIndex.from_folder(faq["folder"], retriever=retriever)
    at1 = atk = 0
    rr = 0.0
    for q in faq["questions"]:
        hits = index.search(q["question"], k=k)
        found = [q["key"].lower() in h.text.lower() for h in hits]
        at1 += bool(found and found[0])
        atk += any(found)
        rr += next((1 / (i + 1) for i, f in enumerate(found) if f), 0.0)
    n = len(faq["questions"])
    return {"recall@1": round(at1 / n, 4), f"recall@{k}": round(atk / n, 4), "mrr": round(rr / n, 4), "n": n}


def _questions(dataset: str | Path | None, qa: bool, category: str | None, limit: int | None):
    """``(dataset name, questions to ask)``: checked before any model loads."""
    if not qa:
        return "chat-qa", []
    name, questions = load_questions(dataset)
    items = [q for q in questions if category in (None, q["category"])]
    if not items:
        found = sorted({q["category"] for q in questions})
        raise InputError(
            f"option --category: {category!r} is not a category of {name}; use one of {', '.join(found)}"
        )
    return name, items[: limit or None]


def evaluate(
    model: Any = None,
    dataset: str | None = "chat-qa",
    split: str = "test",
    limit: int | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    *,
    max_tokens: int = EVAL_MAX_TOKENS,
    category: str | None = None,
    qa: bool = True,
    faq_answers: bool = False,
    retriever: str = RETRIEVER,
    k: int = EVAL_K,
    engine: str = ENGINE,
) -> EvalReport:
    """Accuracy on the question set (greedy) and retrieval recall@k on the bundled FAQ.

    ``qa=False`` (``--no-qa``) skips the questions; without ``faq_answers`` no language model loads.
    """
    import deepapps

    t0 = time.perf_counter()
    dataset_name, items = _questions(dataset, qa, category, limit)  # bad files and categories fail fast
    load = qa or faq_answers
    chat = deepapps.load("chat", model, device=device, precision=precision, engine=engine) if load else None
    rows, per_cat, tokens = _answer_questions(chat, items, max_tokens) if items else ([], {}, 0)
    correct = sum(r["correct"] for r in rows)
    metrics: dict[str, Any] = {
        "accuracy": round(correct / len(rows), 4) if rows else None,
        **{f"accuracy_{c}": round(sum(v) / len(v), 4) for c, v in sorted(per_cat.items())},
        "correct": correct,
        "mean_completion_tokens": round(tokens / max(len(rows), 1), 1),
    }
    recall = retrieval_recall(k=k, retriever=retriever)
    metrics.update({f"faq_{key}": v for key, v in recall.items() if key != "n"})
    extra: dict[str, Any] = {
        "answers": rows,
        "faq_questions": recall["n"],
        "decoding": "greedy",
        "max_tokens": max_tokens,
        "retriever": retriever,
        "engine": chat.engine if chat else None,
        "engine_detail": chat.loaded.describe() if chat else None,
    }
    if faq_answers:
        extra["faq_answer_rows"], metrics["faq_answer_contains_key"] = _faq_answers(
            chat, max_tokens, retriever
        )
    return EvalReport(
        task="chat",
        model=chat.model_name if chat else "(none: retrieval only)",
        dataset=f"{dataset_name} + chat-faq",
        split=split,
        n=len(rows),
        metrics=metrics,
        seconds=time.perf_counter() - t0,
        extra=extra,
    )


def _answer_questions(chat: Any, items: list[dict[str, Any]], max_tokens: int):
    """Greedy answers to ``items``, scored: ``(rows, correct per category, completion tokens)``."""
    from deepapps.runtime import progress

    per_cat: dict[str, list[bool]] = {}
    rows = []
    tokens = 0
    for item in progress(items, desc="chat-qa", unit="q"):
        r = chat(item["question"], temperature=0, max_tokens=max_tokens)
        ok = score(r.text, item["check"])
        per_cat.setdefault(item["category"], []).append(ok)
        tokens += r.completion_tokens
        rows.append({"id": item["id"], "correct": ok, "answer": r.text})
    return rows, per_cat, tokens


def _faq_answers(chat: Any, max_tokens: int, retriever: str) -> tuple[list[dict[str, Any]], float]:
    """End to end: does the answer, given the top chunks, contain the answer phrase?"""
    from deepapps.runtime import progress

    from .retrieval import DocIndex

    faq = load_faq()
    with_docs = chat.with_docs(DocIndex.from_folder(faq["folder"], retriever=retriever), doc_chunks=3)
    rows = []
    for q in progress(faq["questions"], desc="faq answers", unit="q"):
        r = with_docs(q["question"], preset="customer-service", temperature=0, max_tokens=max_tokens * 2)
        rows.append(
            {"question": q["question"], "ok": q["key"].lower() in r.text.lower(), "answer": r.text[:200]}
        )
    return rows, round(sum(r["ok"] for r in rows) / len(rows), 4)


# benchmarks ------------------------------------------------------------------------------
class _FirstToken:
    """A minimal streamer that records when generate() produced its first new token."""

    def __init__(self) -> None:
        self.calls = 0
        self.first: float | None = None

    def put(self, value: Any) -> None:
        self.calls += 1
        if self.calls == 2 and self.first is None:
            self.first = time.perf_counter()

    def end(self) -> None:
        pass


def _raw(chat: Any, prep: dict[str, Any]) -> dict[str, float]:
    """The engine's own library on the prepared prompt ids, without the Chat API."""
    if chat.engine == "llama.cpp":
        return _raw_llama_cpp(chat, prep)
    import torch

    lm = chat.loaded
    ids = torch.tensor([prep["input_ids"]], dtype=torch.long, device=lm.device)
    timer = _FirstToken()
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = lm.model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), streamer=timer, **chat.generation_kwargs(prep)
        )
    t1 = time.perf_counter()
    n = out.shape[1] - ids.shape[1]
    return _figures(n, t0, timer.first or t1, t1)


def _raw_llama_cpp(chat: Any, prep: dict[str, Any]) -> dict[str, float]:
    """``Llama.generate`` (greedy) from an empty KV cache, stopped after exactly ``max_new``
    tokens (it does not stop by itself; the end-of-sequence token is counted like any other)."""
    llm = chat.loaded.llm
    n, first = 0, None
    t0 = time.perf_counter()
    llm.reset()  # no prompt cache from the previous run: every path evaluates the whole prompt
    for _ in llm.generate(prep["input_ids"], temp=0.0, repeat_penalty=1.0, reset=True):
        n += 1
        if first is None:
            first = time.perf_counter()
        if n == prep["max_new"]:
            break
    t1 = time.perf_counter()
    return _figures(n, t0, first or t1, t1)


def _api(chat: Any, messages: list[dict[str, str]], params: dict[str, Any]) -> dict[str, float]:
    t0 = time.perf_counter()
    stream = chat.stream_reply(messages, **params)
    first = None
    for _ in stream:
        if first is None:
            first = time.perf_counter()
    t1 = time.perf_counter()
    out = _figures(stream.result.completion_tokens, t0, first or t1, t1)
    out["streamer_overhead_ms_per_token"] = stream.result.timings["streamer_overhead"] / max(
        stream.result.completion_tokens, 1
    )
    out["prepare_ms"] = stream.result.timings["prepare"]
    return out


def _server(url: str, messages: list[dict[str, str]], params: dict[str, Any], model: str) -> dict[str, float]:
    import httpx

    body = {
        "model": model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        **params,
    }
    first = None
    n = 0
    t0 = time.perf_counter()
    with httpx.stream("POST", url + "/chat/completions", json=body, timeout=600) as r:
        if r.status_code != 200:
            r.read()
            raise RuntimeError(f"server answered {r.status_code}: {r.text}")
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            obj = json.loads(line[6:])
            if obj.get("usage"):
                n = obj["usage"]["completion_tokens"]
            for ch in obj["choices"]:
                if ch["delta"].get("content") and first is None:
                    first = time.perf_counter()
    t1 = time.perf_counter()
    return _figures(n, t0, first or t1, t1)


def _start_server(chat: Any, threads: int) -> tuple[Any, str, str]:
    """Start ``deepapps chat serve`` on a free loopback port for ``chat``'s model, device and
    precision; wait until it answers."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tempfile.TemporaryFile()
    cmd = [sys.executable, "-m", "deepapps.cli", "chat", "serve", "--model", chat.loaded.path]
    cmd += ["--device", chat.device, "--precision", chat.precision, "--port", str(port)]
    cmd += ["--engine", chat.engine]
    env = {**os.environ, "DEEPAPPS_THREADS": str(threads)}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.seek(0)
            tail = log.read().decode(errors="replace")[-1500:]
            raise RuntimeError(f"`deepapps chat serve` did not start for the benchmark:\n{tail}")
        try:
            models = httpx.get(url + "/models", timeout=2).json()["data"]
            return proc, url, models[0]["id"]
        except (httpx.HTTPError, KeyError, IndexError, ValueError):
            time.sleep(0.2)


def _stop_server(proc: Any) -> None:
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _figures(n: int, t0: float, first: float, t1: float) -> dict[str, float]:
    decode = t1 - first
    return {
        "tokens": n,
        "ttft_ms": (first - t0) * 1e3,
        "tokens_per_s": n / (t1 - t0),
        "decode_tokens_per_s": (n - 1) / decode if n > 1 and decode > 0 else float("nan"),
        "seconds": t1 - t0,
    }


RAW_LABEL = {"transformers": "raw model.generate", "llama.cpp": "raw llama_cpp.Llama.generate"}
PATHS = (("raw", None), ("api", "Chat API (streamed)"), ("server", "HTTP server SSE"))
TARGETS = {  # the speed ratio each engine's Chat API and server must reach against its raw library
    "transformers": {"api": ">= 0.95", "server": ">= 0.95"},
    "llama.cpp": {"api": ">= 0.9", "server": ">= 0.85", "api_ttft": "<= 1.5"},
}


def bench(
    model: Any = None,
    device: str = "cpu",
    precision: str = "fp32",
    *,
    prompt: str = BENCH_PROMPT,
    max_tokens: int = BENCH_MAX_TOKENS,
    repeats: int = BENCH_REPEATS,
    threads: int | None = None,
    server: bool = True,
    engine: str = "all",
    streams: int = BENCH_STREAMS,
) -> BenchReport:
    """Per engine: its raw library vs the Chat API vs the server, same prompt, interleaved.

    Figures are named ``<engine>_<path>_...`` (``llama_cpp_api_tokens_per_s``,
    ``transformers_raw_ttft_ms``...); ``engine="all"`` measures every engine that can run the model.
    """
    import deepapps
    from deepapps.runtime import set_threads

    n_threads = set_threads(threads)
    t_start = time.perf_counter()
    report = BenchReport(task="chat", model="", figures={}, seconds=0.0)
    messages = [{"role": "user", "content": prompt}]
    params = {"temperature": 0, "max_tokens": max_tokens, "min_tokens": max_tokens}
    setup: dict[str, Any] = {"prompt": prompt, "max_tokens": max_tokens, "repeats": repeats,
                             "threads": n_threads, "engines": {}}  # fmt: skip
    api_speed: dict[str, float] = {}
    for name in _bench_engines(model, device, precision, engine):
        chat = deepapps.load("chat", model, device=device, precision=precision, engine=name)
        if name == "llama.cpp":
            chat.loaded.set_threads(n_threads)
        report.model = chat.model_name
        prep = chat.prepare(messages, **params)
        srv, url, served = _start_server(chat, n_threads) if server else (None, None, chat.model_name)
        try:
            runs = _timed_runs(chat, messages, params, prep, url, served, repeats)
        finally:
            _stop_server(srv)
        med = {
            path: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for path, rs in runs.items() if rs
        }
        how = f"median of {repeats} interleaved runs, greedy, exactly {max_tokens} new tokens"
        _add_path_figures(report, med, how, name)
        _add_overhead_figures(report, med, name)
        report.add(
            f"{name.replace('.', '_')}_load_seconds",
            round(chat.load_ms / 1e3, 2),
            "s",
            measured="loading the chat model in this process (0 if already loaded)",
        )
        api_speed[name] = med["api"]["tokens_per_s"]
        setup["engines"][name] = _engine_setup(chat, prep, runs)
        if streams and name == "transformers":  # continuous batching: deepapps_nlp.batching
            from .batching import add_stream_figures

            setup["batched"] = add_stream_figures(report, chat, streams, max_tokens)
    if len(api_speed) == 2:
        report.add(
            "llama_cpp_vs_transformers_api_tokens_per_s_ratio",
            round(api_speed["llama.cpp"] / api_speed["transformers"], 2),
            "ratio",
            measured="Chat API tokens/s on the llama.cpp engine over the transformers engine, same model",
        )
    report.setup = setup
    report.seconds = time.perf_counter() - t_start
    return report


def _bench_engines(model: Any, device: str, precision: str, engine: str) -> list[str]:
    """The engines to time: the one asked for, or for ``all`` llama.cpp (when it can run the
    model here) and transformers."""
    if engine != "all":
        return [engine]
    import deepapps

    auto = deepapps.load("chat", model, device=device, precision=precision, engine="auto")
    return ["llama.cpp", "transformers"] if auto.engine == "llama.cpp" else ["transformers"]


def _engine_setup(chat: Any, prep: dict[str, Any], runs: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    return {
        **chat.loaded.describe(),
        "model_path": chat.loaded.path,
        "prompt_tokens": prep["prompt_tokens"],
        "device": chat.device,
        "precision": chat.precision,
        "load_seconds": round(chat.load_ms / 1e3, 2),
        "runs": runs,
    }


def _timed_runs(chat, messages, params, prep, url, served, repeats) -> dict[str, list[dict[str, float]]]:
    """One warm-up pass through each path, then ``repeats`` rounds, the paths interleaved."""
    runs: dict[str, list[dict[str, float]]] = {"raw": [], "api": [], "server": []}
    warm = {**params, "max_tokens": 4, "min_tokens": 4}  # first-call allocations, connection setup
    _raw(chat, chat.prepare(messages, **warm))
    _api(chat, messages, warm)
    if url:
        _server(url, messages, warm, served)
    for _ in range(repeats):
        runs["raw"].append(_raw(chat, prep))
        runs["api"].append(_api(chat, messages, params))
        if url:
            runs["server"].append(_server(url, messages, params, served))
    return runs


def _add_path_figures(report: BenchReport, med: dict[str, dict[str, float]], how: str, engine: str) -> None:
    key = engine.replace(".", "_")
    for path, label in PATHS:
        if path not in med:
            continue
        m = med[path]
        label = f"{engine} engine, {label or RAW_LABEL[engine]}"
        report.add(
            f"{key}_{path}_tokens_per_s",
            round(m["tokens_per_s"], 2),
            "tokens/s",
            measured=f"{label}: new tokens / wall time from call to last token; {how}",
        )
        report.add(
            f"{key}_{path}_decode_tokens_per_s",
            round(m["decode_tokens_per_s"], 2),
            "tokens/s",
            measured=f"{label}: (tokens - 1) / time after the first token",
        )
        report.add(
            f"{key}_{path}_ttft_ms",
            round(m["ttft_ms"], 1),
            "ms",
            measured=f"{label}: time from call to first new token (text delta for api/server)",
        )
    targets = TARGETS[engine]
    for path in ("api", "server"):
        if path in med:
            report.add(
                f"{key}_{path}_vs_raw_tokens_per_s_ratio",
                round(med[path]["tokens_per_s"] / med["raw"]["tokens_per_s"], 3),
                "ratio",
                target=targets[path],
            )
    if "api_ttft" in targets:
        report.add(
            f"{key}_api_vs_raw_ttft_ratio",
            round(med["api"]["ttft_ms"] / med["raw"]["ttft_ms"], 3),
            "ratio",
            target=targets["api_ttft"],
        )


def _add_overhead_figures(report: BenchReport, med: dict[str, dict[str, float]], engine: str) -> None:
    """What the Chat API's own per-token work costs, independent of run-to-run noise."""
    if "api" not in med:
        return
    key = engine.replace(".", "_")
    per_token_ms = 1e3 / med["raw"]["decode_tokens_per_s"]
    overhead = med["api"]["streamer_overhead_ms_per_token"]
    report.add(
        f"{key}_api_streamer_overhead_ms_per_token",
        round(overhead, 4),
        "ms",
        measured="time inside the Chat API's streamer per token (decode + stop-string check), "
        "between decoding steps",
    )
    report.add(
        f"{key}_api_prepare_ms",
        round(med["api"]["prepare_ms"], 2),
        "ms",
        measured="chat template + tokenization + history trimming before decoding",
    )
    report.add(
        f"{key}_api_overhead_bound_ratio",
        round(per_token_ms / (per_token_ms + overhead), 4),
        "ratio",
        measured="raw ms/token over (raw ms/token + streamer overhead): the speed ratio the "
        "Chat API's own per-token work allows, independent of run-to-run noise",
    )
