"""``deepapps faces enroll|search|verify|list|remove``: the gallery from the command line.

Every command takes ``--gallery PATH`` (default ``$DEEPAPPS_HOME/faces/gallery.db``) and ``--json``
(one JSON object on stdout). Only ``enroll`` creates a gallery; the other commands refuse a path
where there is none, so a mistyped path is an error rather than a new, empty gallery. Recognizer
options (``--detector``, ``--upsample``, ``--threshold``, ...) are the task's declared options,
checked exactly as ``deepapps run face-recognition`` checks them, before any model loads.

Exit status: 0 done; 1 some inputs failed (no face, unreadable file: named on stderr, the others
were still processed); 2 nothing was done (bad option, missing file or gallery, unknown name).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from deepapps import InputError
from deepapps.options import by_name, check_options

from .specs import RUN_OPTIONS, TASK

_DECLARED = by_name(RUN_OPTIONS)

GALLERY = click.option(
    "--gallery", "-g", default=None,
    help="Gallery .db file or folder (default $DEEPAPPS_HOME/faces/gallery.db).",
)  # fmt: skip
JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
MODEL = click.option(
    "--model", "-m", default=None,
    help="Embedder: a registered model name or alias, or a dlib .dat file (default: the task's).",
)  # fmt: skip
DEVICE = click.option(
    "--device", "-d", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps."
)


def declared(name: str, *short: str):
    """A click option for one of the task's declared options: read as text, then checked by the
    declaration (so ``--upsample abc`` gets the same one-line error as ``deepapps run``)."""
    opt = _DECLARED[name]
    default = "" if opt.default is None else f" [default: {opt.default}]"
    return click.option(opt.flag, *short, name, default=None, metavar=opt.describe_type(),
                        help=f"{opt.help}{default}")  # fmt: skip


def _emit(obj: Any) -> None:
    click.echo(json.dumps(obj, default=str))


def _checked(command: str, **given: Any) -> dict[str, Any]:
    """The declared options the user gave, typed and range-checked (one-line OptionError otherwise)."""
    return check_options(RUN_OPTIONS, {k: v for k, v in given.items() if v is not None},
                         f"deepapps faces {command}", fill_defaults=False)  # fmt: skip


def _runner(model: str | None, device: str, options: dict[str, Any]):
    """The task's runner (model resolved and device chosen by the core), options as its defaults."""
    import deepapps

    return deepapps.load(TASK, model, device=device, **options)


def _image_files(texts: list[str]) -> list[str]:
    """Image paths, folders expanded, checked the way ``deepapps run`` checks image inputs."""
    from dataclasses import replace

    from deepapps import registry
    from deepapps.inputs import check_inputs

    return check_inputs(replace(registry.task(TASK), input_kind="image"), list(texts))


def _one_image(text: str) -> str:
    files = _image_files([text])
    if len(files) != 1 or Path(files[0]) != Path(text).expanduser():
        raise InputError(f"input {text}: is a folder; pass one image file")
    return files[0]


def _existing_gallery(path: str | None):
    """The gallery at ``path`` (no recognizer yet); a path without a gallery is an error."""
    from .gallery import Gallery

    return Gallery(path, create=False)


def _exit_on_failures(ctx: click.Context, failures: list[tuple[str, str]], total: int) -> None:
    """Name every failed input on stderr and exit 1 (the other inputs were processed)."""
    if failures:
        listing = "; ".join(f"{name} ({why})" for name, why in failures)
        click.secho(f"Error: {len(failures)} of {total} input(s) failed: {listing}", fg="red", err=True)
        ctx.exit(1)


@click.group()
def faces() -> None:
    """Face gallery: enroll people, search photos, verify two photos, list, remove."""


# enroll ------------------------------------------------------------------------------------------
@faces.command()
@click.argument("name", required=False)
@click.argument("images", nargs=-1)
@click.option(
    "--folder",
    default=None,
    help="Sync a folder laid out as FOLDER/<name>/*.jpg (only new or changed files are embedded).",
)
@click.option("--no-prune", is_flag=True, help="With --folder: keep faces whose files were removed.")
@declared("detector")
@declared("upsample")
@declared("min_score")
@GALLERY
@MODEL
@DEVICE
@JSON
@click.pass_context
def enroll(ctx, name, images, folder, no_prune, detector, upsample, min_score, gallery, model, device,
           as_json) -> None:  # fmt: skip
    """Enroll NAME from IMAGES, or a whole --folder of people (creates the gallery if needed)."""
    from .gallery import Gallery, check_name

    files = _enroll_inputs(name, images, folder)
    options = _checked("enroll", detector=detector, upsample=upsample, min_score=min_score)
    runner = _runner(model, device, options)
    with Gallery(gallery, recognizer=runner.recognizer_for(), create=True) as g:
        if folder:
            report = g.enroll_folder(folder, prune=not no_prune)
        else:
            report = g.enroll(check_name(name), files, progress=True)
        out = {"gallery": str(g.path), **report.to_dict(), "identities_total": len(g)}
    if as_json:
        _emit(out)
    else:
        click.echo(
            f"{out['gallery']}: +{report.added} added, {report.replaced} replaced, {report.unchanged} unchanged, "
            f"{report.removed} removed; {out['identities_total']} identities"
        )
    failures = [(src, "no face found") for src in report.no_face] + list(report.failed.items())
    total = len(files) or report.added + report.replaced + report.unchanged + len(failures)
    _exit_on_failures(ctx, failures, total)


def _enroll_inputs(name: str | None, images: tuple[str, ...], folder: str | None) -> list[str]:
    """The image files to enroll (none with --folder); usage mistakes are one-line errors."""
    from .gallery import check_name

    if folder and (name or images):
        raise InputError("pass either NAME IMAGE... or --folder PEOPLE/, not both")
    if folder:
        if not Path(folder).expanduser().is_dir():
            raise InputError(f"--folder {folder}: not a folder; expected PEOPLE/<name>/*.jpg")
        return []
    if not name or not images:
        raise InputError(
            "pass NAME and at least one image (deepapps faces enroll NAME PHOTO...), or --folder PEOPLE/"
        )
    check_name(name)
    return _image_files(list(images))


# search ------------------------------------------------------------------------------------------
@faces.command()
@click.argument("images", nargs=-1, required=True)
@declared("top_k", "-k")
@declared("threshold")
@declared("detector")
@declared("upsample")
@declared("min_score")
@GALLERY
@MODEL
@DEVICE
@JSON
@click.pass_context
def search(
    ctx, images, top_k, threshold, detector, upsample, min_score, gallery, model, device, as_json
) -> None:
    """The gallery identities nearest to the largest face in each of IMAGES (files or folders)."""
    files = _image_files(list(images))
    options = _checked("search", top_k=top_k, threshold=threshold, detector=detector, upsample=upsample,
                       min_score=min_score)  # fmt: skip
    with _existing_gallery(gallery) as g:
        if len(g) == 0:
            raise InputError(f"the face gallery {g.path} is empty; enroll someone first with "
                             f"`deepapps faces enroll NAME PHOTO --gallery {g.path}`")  # fmt: skip
        runner = _runner(model, device, options)
        g.recognizer = runner.recognizer_for()
        opts = runner.check_call_options({})
        rows = [_search_one(g, f, opts["top_k"], opts["threshold"]) for f in files]
        threshold_used = g.recognizer.threshold if opts["threshold"] is None else opts["threshold"]
        out = {
            "gallery": str(g.path),
            "model": runner.model_name,
            "threshold": threshold_used,
            "results": rows,
        }
    if as_json:
        _emit(out)
    else:
        _print_search(rows)
    _exit_on_failures(ctx, [(r["image"], r["error"]) for r in rows if r["error"]], len(rows))


def _search_one(g, image: str, top_k: int, threshold: float | None) -> dict[str, Any]:
    """One image's matches, or why there are none (no face, unreadable)."""
    try:
        vector = g.recognizer.embedding(image)
    except InputError as exc:
        return {"image": image, "face_found": False, "matches": [], "error": str(exc)}
    if vector is None:
        return {"image": image, "face_found": False, "matches": [], "error": "no face found"}
    matches = g.search_embedding(vector, k=top_k, threshold=threshold)
    return {"image": image, "face_found": True, "matches": [m.to_dict() for m in matches], "error": None}


def _print_search(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        if row["error"]:
            click.echo(f"{row['image']}: {row['error']}")
            continue
        click.echo(row["image"])
        for m in row["matches"]:
            click.echo(
                f"  {m['name']:<30} distance {m['distance']:.4f}  {'MATCH' if m['same'] else ''}".rstrip()
            )


# verify ------------------------------------------------------------------------------------------
@faces.command()
@click.argument("image_a")
@click.argument("image_b")
@declared("threshold")
@declared("detector")
@declared("upsample")
@declared("min_score")
@MODEL
@DEVICE
@JSON
@click.pass_context
def verify(ctx, image_a, image_b, threshold, detector, upsample, min_score, model, device, as_json) -> None:
    """Are the largest faces in IMAGE_A and IMAGE_B the same person? (exit 1 when a photo has no face)"""
    a, b = _one_image(image_a), _one_image(image_b)
    options = _checked(
        "verify", threshold=threshold, detector=detector, upsample=upsample, min_score=min_score
    )
    result = _runner(model, device, options).verify(a, b)
    if as_json:
        _emit(result.to_dict())
    elif result.distance is not None:
        click.echo(f"{result.source}: {result.summary()}")
    if result.distance is None:
        _exit_on_failures(ctx, [(result.source, result.reason)], 1)


# list / remove -----------------------------------------------------------------------------------
@faces.command(name="list")
@GALLERY
@JSON
def list_(gallery, as_json) -> None:
    """Identities in the gallery with their number of faces."""
    with _existing_gallery(gallery) as g:
        rows = [i.to_dict() for i in g.list()]
        path = str(g.path)
    if as_json:
        _emit({"gallery": path, "identities": rows})
        return
    if not rows:
        click.echo(f"{path}: empty")
    for r in rows:
        click.echo(f"{r['name']:<30} {r['embeddings']} face(s)")


@faces.command()
@click.argument("name")
@GALLERY
@JSON
def remove(name, gallery, as_json) -> None:
    """Delete NAME and all its faces from the gallery."""
    with _existing_gallery(gallery) as g:
        n = g.remove(name)
        path = str(g.path)
    if n == 0:
        raise InputError(f"no identity named {name!r} in {path}; see `deepapps faces list --gallery {path}`")
    if as_json:
        _emit({"gallery": path, "name": name, "removed": True, "faces": n})
    else:
        click.echo(f"removed {name} ({n} face(s))")
