"""`.venv/bin/python docs/figures/cover_focus.py`: redraws docs/cover-focus.png, the
before/after of the two cover foci, from a generated scene through the real image core."""

from __future__ import annotations

import dataclasses
import io
import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "functions")]

from image_pipeline import imaging  # noqa: E402 (found through the path set above)
from image_pipeline.formats import Box  # noqa: E402
from image_pipeline.settings import Tunables  # noqa: E402
from infra.local.sample_images import off_centre_subject  # noqa: E402

FIGURE = ROOT / "docs" / "cover-focus.png"
BOX = Box(300, 300, "cover")
_GAP, _LABEL = 20, 30


def cover_focus_figure(box: Box = BOX) -> Image.Image:
    """The scene, then its ``box`` thumbnail under each focus, side by side and labelled."""
    data = off_centre_subject()
    tunables = Tunables(thumbnail_sizes=(box,), thumbnail_formats=("png",))
    base = imaging.Options.from_tunables(tunables)
    source = Image.open(io.BytesIO(data)).convert("RGB")
    shown = imaging.fit(source.size, Box(box.width * 2, box.height))
    panels = [(f"original {source.width}x{source.height}", shown)]
    images = [source.resize(shown)]
    for focus in ("centre", "detail"):
        options = dataclasses.replace(base, cover_focus=focus)
        (thumb,) = imaging.make_thumbnails(data, options).thumbnails
        images.append(Image.open(io.BytesIO(thumb.data)).convert("RGB"))
        panels.append((f"{box}, {focus}", (thumb.width, thumb.height)))
    width = sum(im.width for im in images) + _GAP * (len(images) - 1)
    figure = Image.new("RGB", (width, box.height + _LABEL), "white")
    draw = ImageDraw.Draw(figure)
    x = 0
    for (label, _), im in zip(panels, images, strict=True):
        figure.paste(im, (x, 0))
        draw.text((x + 4, box.height + 8), label, fill="black")
        x += im.width + _GAP
    return figure


if __name__ == "__main__":
    cover_focus_figure().save(FIGURE, optimize=True)
    print(f"wrote {FIGURE}")
