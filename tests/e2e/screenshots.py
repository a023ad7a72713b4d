"""README screenshots, written by the browser tests when SCREENSHOTS=1 (`make screenshots`).

Small on purpose: a 360 px wide phone at device scale 1, reduced to a 64-colour palette PNG (octree: keeps the few strong colours)."""
from __future__ import annotations

import io
import os
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def wanted() -> bool:
    return os.environ.get("SCREENSHOTS") == "1"


def shoot(page, name: str) -> Path | None:
    if not wanted():
        return None
    from PIL import Image

    OUT.mkdir(parents=True, exist_ok=True)
    image = Image.open(io.BytesIO(page.screenshot(full_page=False, animations="disabled", caret="hide")))
    path = OUT / f"{name}.png"
    image.convert("RGB").quantize(colors=64, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)
    return path
