"""``deepapps faces enroll|search|verify|list|remove``: the gallery from the command line.

Every command takes ``--gallery PATH`` (default ``$DEEPAPPS_HOME/faces/gallery.db``) and ``--json``
(one JSON object on stdout).
"""

from __future__ import annotations

import json

import click

GALLERY = click.option(
    "--gallery",
    "-g",
    default=None,
    help="Gallery .db file or folder (default $DEEPAPPS_HOME/faces/gallery.db).",
)
JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
DETECTOR = click.option("--detector", type=click.Choice(["hog", "cnn"]), default="hog", show_default=True)


def _emit(obj) -> None:
    click.echo(json.dumps(obj, default=str))


def _gallery(path, detector="hog"):
    from .gallery import Gallery
    from .recognizer import FaceRecognizer

    return Gallery(path, recognizer=FaceRecognizer(detector=detector))


@click.group()
def faces() -> None:
    """Face gallery: enroll people, search a photo, verify two photos, list, remove."""


@faces.command()
@click.argument("name", required=False)
@click.argument("images", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--folder",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Sync a folder laid out as FOLDER/<name>/*.jpg (only new or changed files are embedded).",
)
@click.option("--no-prune", is_flag=True, help="With --folder: keep faces whose files were removed.")
@GALLERY
@DETECTOR
@JSON
def enroll(name, images, folder, no_prune, gallery, detector, as_json) -> None:
    """Enroll NAME from IMAGES, or a whole --folder of people."""
    if folder and (name or images):
        raise click.UsageError("pass either NAME IMAGES... or --folder, not both")
    if not folder and (not name or not images):
        raise click.UsageError("pass NAME and at least one image, or --folder people/")
    g = _gallery(gallery, detector)
    report = (
        g.enroll_folder(folder, prune=not no_prune) if folder else g.enroll(name, list(images), progress=True)
    )
    out = {"gallery": str(g.path), **report.to_dict(), "identities_total": len(g)}
    if as_json:
        _emit(out)
        return
    click.echo(
        f"{g.path}: +{report.added} added, {report.replaced} replaced, {report.unchanged} unchanged, "
        f"{report.removed} removed; {len(g)} identities"
    )
    for src in report.no_face:
        click.echo(f"  no face found: {src}")


@faces.command()
@click.argument("image", type=click.Path(exists=True, dir_okay=False))
@click.option("-k", "--k", default=5, show_default=True, help="How many identities to return.")
@GALLERY
@DETECTOR
@JSON
def search(image, k, gallery, detector, as_json) -> None:
    """The K gallery identities nearest to the largest face in IMAGE."""
    g = _gallery(gallery, detector)
    vector = g.recognizer.embedding(image)
    matches = [] if vector is None else g.search_embedding(vector, k=k)
    out = {
        "image": image,
        "gallery": str(g.path),
        "face_found": vector is not None,
        "threshold": g.recognizer.threshold,
        "matches": [m.to_dict() for m in matches],
    }
    if as_json:
        _emit(out)
        return
    if not matches:
        click.echo("no face found" if vector is None else f"the gallery {g.path} is empty")
    for m in matches:
        click.echo(f"{m.name:<30} distance {m.distance:.4f}  {'MATCH' if m.same else ''}")


@faces.command()
@click.argument("image_a", type=click.Path(exists=True, dir_okay=False))
@click.argument("image_b", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--threshold", type=float, default=None, help="Distance threshold (default: the embedder's, 0.6)."
)
@DETECTOR
@JSON
def verify(image_a, image_b, threshold, detector, as_json) -> None:
    """Are the largest faces in IMAGE_A and IMAGE_B the same person?"""
    from .recognizer import FaceRecognizer

    v = FaceRecognizer(detector=detector).verify(image_a, image_b, threshold=threshold)
    if as_json:
        _emit(v.to_dict())
        return
    if v.distance is None:
        click.echo(v.reason)
    else:
        click.echo(
            f"{'same person' if v.same else 'different people'}: distance {v.distance:.4f} (threshold {v.threshold})"
        )


@faces.command(name="list")
@GALLERY
@JSON
def list_(gallery, as_json) -> None:
    """Identities in the gallery with their number of faces."""
    from .gallery import Gallery

    g = Gallery(gallery)
    rows = [i.to_dict() for i in g.list()]
    if as_json:
        _emit({"gallery": str(g.path), "identities": rows})
        return
    if not rows:
        click.echo(f"{g.path}: empty")
    for r in rows:
        click.echo(f"{r['name']:<30} {r['embeddings']} face(s)")


@faces.command()
@click.argument("name")
@GALLERY
@JSON
def remove(name, gallery, as_json) -> None:
    """Delete NAME and all its faces from the gallery."""
    from deepapps import InputError

    from .gallery import Gallery

    g = Gallery(gallery)
    n = g.remove(name)
    if as_json:
        _emit({"gallery": str(g.path), "name": name, "removed": n > 0, "faces": n})
        return
    if n == 0:
        raise InputError(f"no identity named {name!r} in {g.path}; see `deepapps faces list`")
    click.echo(f"removed {name} ({n} face(s))")
