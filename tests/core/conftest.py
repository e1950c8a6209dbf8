"""Boring fixtures (in the spirit of Lightning's BoringModel): a tiny in-process plugin."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import deepapps
from deepapps import (
    BenchReport,
    DatasetSpec,
    EvalReport,
    ModelCard,
    ModelSpec,
    Option,
    Result,
    Runner,
    TaskSpec,
    UIPageSpec,
    hookimpl,
)


@dataclass(kw_only=True)
class CountResult(Result):
    text: str
    words: int

    def summary(self) -> str:
        return f"{self.words} words"


class WordCounter(Runner):
    task = "word-count"

    def preprocess(self, item, **kwargs):
        if not isinstance(item, str):
            raise deepapps.InputError(f"word-count takes text, got {type(item).__name__}")
        return item.split()

    def forward(self, prepared, min_len):
        return [w for w in prepared if len(w) >= min_len]

    def postprocess(self, raw, item, min_len):
        return CountResult(text=item, words=len(raw))


BUILT: list[dict] = []  # every runner the factory built (to check caching and what reached it)


def make_runner(model, device, precision, lowercase):
    BUILT.append({"model": model, "device": device, "precision": precision, "lowercase": lowercase})
    return WordCounter(model_name=model.name, device=device, precision=precision)


def evaluate(model, dataset, split, limit, device, precision):
    items = load_split(split)[: limit or None]
    runner = deepapps.load("word-count", model=model, device=device)
    correct = sum(runner(text).words == n for text, n in items)
    return EvalReport(
        "word-count", model.name, dataset, split, len(items), {"accuracy": correct / len(items)}, 0.0
    )


def bench(model, device, precision, repeat):
    import time

    runner = deepapps.load("word-count", model=model, device=device)
    t0 = time.perf_counter()
    for _ in range(repeat):
        runner("a b c d")
    report = BenchReport("word-count", model.name, {}, time.perf_counter() - t0)
    report.add("latency", (time.perf_counter() - t0) / repeat * 1e3, "ms", repeat=repeat)
    return report


def train(model, dataset, out_dir, device, precision, epochs):
    return {"task": "word-count", "epochs": epochs, "out_dir": str(out_dir), "device": device,
            "model": model.name if model else None}


def load_split(split):
    data = {"train": [("a b", 2)], "test": [("one two three", 3), ("x", 1), ("", 0)]}
    return data[split]


def render_page():
    import streamlit as st

    st.title("Word count")


class BoringPlugin:
    """Registers one of everything."""

    @hookimpl
    def register_tasks(self, register):
        register(
            TaskSpec(
                name="word-count",
                title="Count words",
                domain="text",
                runner=make_runner,
                default_model="whitespace",
                inputs="text",
                outputs="word count",
                aliases=("wc",),
                evaluate=evaluate,
                bench=bench,
                train=train,
                default_dataset="tiny-words",
                input_kind="text",
                options=(
                    Option("min_len", "int", 1, "count only words at least this long", min=1, max=100),
                    Option("lowercase", "bool", False, "lowercase before counting", when="load"),
                ),
                train_options=(Option("epochs", "int", 1, "passes over the data", min=1, max=1000),),
                bench_options=(Option("repeat", "int", 50, "calls to time", min=1, max=100_000),),
            )
        )

    @hookimpl
    def register_models(self, register):
        register(
            ModelSpec(
                name="whitespace",
                task="word-count",
                source="builtin:",
                aliases=("spaces",),
                card=ModelCard(license="MIT", params=0),
            )
        )
        register(
            ModelSpec(
                name="stopwords-en",
                task="word-count",
                source="builtin:",
                component="stop-word list",
                card=ModelCard(license="MIT", params=0),
            )
        )

    @hookimpl
    def register_datasets(self, register):
        register(
            DatasetSpec(name="tiny-words", task="word-count", loader=load_split, splits=("train", "test"))
        )

    @hookimpl
    def register_ui_pages(self, register):
        register(UIPageSpec(task="word-count", title="Word count", render=render_page))

    @hookimpl
    def register_commands(self, cli):
        import click

        @cli.command(name="boring-hello")
        def hello():
            """Say hello."""
            click.echo("hello from boring")


@pytest.fixture
def boring_plugin():
    deepapps.register_plugin(BoringPlugin(), "boring")
    yield
    deepapps.unregister_plugin("boring")
