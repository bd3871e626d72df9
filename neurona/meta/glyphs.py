"""Omniglot-like few-shot data from the Noto fonts: each class is one character of one script,
its samples renderings of it with random small rotations, scalings, shifts and stroke widths
(the "drawers"); rotating every character by 90°, 180° and 270° makes three more classes, as in
Santoro et al. (2016) and MAML's Omniglot set-up. Omniglot itself cannot be had here.

Fonts: `apt-get install -y fonts-noto-core` puts NotoSans<Script>-Regular.ttf in
/usr/share/fonts/truetype/noto. A character belongs to a script when its Unicode name contains
the script's name (so the Latin letters every Noto font carries are not counted twice). The
rendered set is cached as an .npz (no pickle) under `neurona.datasets.cache_dir()`.
May import: numpy, Pillow, fontTools, neurona.datasets (cache_dir).
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import numpy as np

NOTO_DIR = "/usr/share/fonts/truetype/noto"


def _script_name(path):
    stem = Path(path).name[len("NotoSans"):-len("-Regular.ttf")]
    return re.sub(r"(?<!^)(?=[A-Z])", " ", stem)


def list_scripts(font_dir=NOTO_DIR, chars_per_script=20, min_chars=10):
    """{script: (font path, characters)} for each Noto script font with at least `min_chars`
    letters of that script (the first `chars_per_script` of them, in code-point order)."""
    from fontTools.ttLib import TTFont

    fonts = sorted(Path(font_dir).glob("NotoSans?*-Regular.ttf"))
    if not fonts:
        raise FileNotFoundError(f"glyphs: no NotoSans<Script>-Regular.ttf in {font_dir}; install them with "
                                "`sudo apt-get install -y fonts-noto-core`")
    out = {}
    for path in fonts:
        script = _script_name(path)
        key = script.upper()
        if script in ("Display", "Math", "Symbols", "Symbols2", "Mono") or "Numerals" in script:
            continue
        with TTFont(path, lazy=True) as font:
            cmap = font.getBestCmap() or {}
        chars = []
        for cp in sorted(cmap):
            ch = chr(cp)
            if unicodedata.category(ch) in ("Lo", "Lu", "Ll") and key in unicodedata.name(ch, ""):
                chars.append(ch)
        if len(chars) >= min_chars:
            out[script] = (str(path), chars[:chars_per_script])
    return out


def _render(font, ch, size, rng, jitter):
    from PIL import Image, ImageDraw

    canvas = 64
    img = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(img)
    stroke = int(rng.integers(0, 2)) if jitter else 0
    draw.text((canvas / 2, canvas / 2), ch, fill=255, font=font, anchor="mm", stroke_width=stroke, stroke_fill=255)
    box = img.getbbox()
    if box is None:
        return None
    img = img.crop(box)
    w, h = img.size
    side = max(w, h)
    square = Image.new("L", (side, side), 0)
    square.paste(img, ((side - w) // 2, (side - h) // 2))
    if jitter:
        square = square.rotate(float(rng.uniform(-12, 12)), resample=Image.BILINEAR, expand=True)
    inner = int(round(size * (rng.uniform(0.7, 0.9) if jitter else 0.8)))
    square = square.resize((inner, inner), Image.BILINEAR)
    out = Image.new("L", (size, size), 0)
    slack = size - inner
    dx, dy = (rng.integers(0, slack + 1, 2) if jitter else (slack // 2, slack // 2))
    out.paste(square, (int(dx), int(dy)))
    return np.asarray(out, dtype=np.uint8)


def render_glyphs(scripts=None, chars_per_script=20, samples_per_class=20, size=28, rotations=True, seed=0,
                  font_dir=NOTO_DIR, cache=True):
    """(x, y, names): x (n, 1, size, size) float32 in [0, 1], y int64 class ids, names[c] like
    'Armenian Ա rot90'. `scripts`: names to use (default: all with enough letters)."""
    from PIL import ImageFont

    from ..datasets.loaders import cache_dir

    table = list_scripts(font_dir, chars_per_script)
    if scripts is not None:
        missing = [s for s in scripts if s not in table]
        if missing:
            raise ValueError(f"render_glyphs: no usable Noto font for scripts {missing}; known: {sorted(table)}")
        table = {s: table[s] for s in scripts}
    key = f"glyphs_{len(table)}s_{chars_per_script}c_{samples_per_class}n_{size}px_r{int(rotations)}_{seed}"
    path = cache_dir() / f"{key}.npz"
    if cache and path.exists() and scripts is None:
        data = np.load(path, allow_pickle=False)
        return data["x"], data["y"], data["names"].tolist()
    rng = np.random.default_rng(seed)
    images, labels, names = [], [], []
    for script, (font_path, chars) in table.items():
        font = ImageFont.truetype(font_path, 40)
        for ch in chars:
            samples = [_render(font, ch, size, rng, jitter=True) for _ in range(samples_per_class)]
            if any(s is None for s in samples) or max(int(s.sum()) for s in samples) < 5 * 255:
                continue  # an empty glyph: nothing to learn
            for turn in range(4 if rotations else 1):
                names.append(f"{script} {ch}" + (f" rot{90 * turn}" if turn else ""))
                for s in samples:
                    images.append(np.rot90(s, turn))
                    labels.append(len(names) - 1)
    x = np.ascontiguousarray(np.stack(images)[:, None], dtype=np.uint8)
    y = np.asarray(labels, dtype=np.int64)
    if cache and scripts is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, x=x, y=y, names=np.asarray(names))
        tmp.replace(path)
    return x, y, names
