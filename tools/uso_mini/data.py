"""The procedural world uso-mini learns: triplets (content image, style image, stylised target) with
captions, deterministic by seed.

- Subjects have an identity: a shape with its own colours and markings (an orange striped cat, a blue
  spotted fish, ...). Content images show the subject plainly on a background, anywhere.
- Styles are image transforms (pixel art, pencil hatching, neon, pastel watercolour, halftone,
  duotone, mosaic, negative). A style image is the style applied to an abstract random scene, so it
  carries the style and nothing of the subject.
- Targets are the subject at the layout the caption states (position, size, background), rendered
  plainly (subject-only mode) or in a style.
- Subject × style pairs with (subject − style) mod 8 == 0 are held out of training, for evaluation.

  python3 tools/uso_mini/data.py --out /tmp/uso-mini-samples   # writes a few triplets as PNGs
"""
from __future__ import annotations

import argparse
import math
import pathlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 128

# ---------------------------------------------------------------------------------------------
# Subjects


@dataclass(frozen=True)
class Subject:
    name: str            # as captions say it
    body: tuple
    mark: tuple
    draw: str            # shape routine


SUBJECTS = [
    Subject("orange striped cat", (235, 140, 40), (90, 45, 10), "cat"),
    Subject("blue spotted fish", (60, 120, 230), (250, 250, 250), "fish"),
    Subject("red house with windows", (200, 50, 50), (255, 230, 120), "house"),
    Subject("green round tree", (40, 160, 60), (110, 70, 30), "tree"),
    Subject("yellow star with a dot", (250, 215, 40), (200, 40, 40), "star"),
    Subject("grey robot", (150, 150, 160), (40, 220, 240), "robot"),
    Subject("red spotted mushroom", (220, 30, 60), (245, 245, 235), "mushroom"),
    Subject("purple bird", (140, 70, 200), (250, 180, 40), "bird"),
]

POSITIONS = {"top left": (0.28, 0.28), "top right": (0.72, 0.28), "bottom left": (0.28, 0.72),
             "bottom right": (0.72, 0.72), "center": (0.5, 0.5)}
SIZES = {"small": 0.32, "large": 0.52}
BACKGROUNDS = {"dark": (35, 35, 45), "light": (228, 226, 215), "blue": (80, 120, 200), "green": (90, 160, 95),
               "pink": (235, 170, 200)}


@dataclass(frozen=True)
class Layout:
    position: str
    size: str
    background: str
    jitter: tuple = (0.0, 0.0, 1.0)   # dx, dy (fractions of the image) and a size factor

    def caption(self, subject: str) -> str:
        return f"a {self.size} {subject} at the {self.position} on a {self.background} background"


def random_layout(rng: np.random.Generator) -> Layout:
    return Layout(str(rng.choice(list(POSITIONS))), str(rng.choice(list(SIZES))), str(rng.choice(list(BACKGROUNDS))),
                  (float(rng.uniform(-0.04, 0.04)), float(rng.uniform(-0.04, 0.04)), float(rng.uniform(0.9, 1.1))))


def _poly(d, pts, fill):
    d.polygon([tuple(p) for p in pts], fill=fill)


def draw_subject(d: ImageDraw.ImageDraw, subject: Subject, cx: float, cy: float, r: float) -> None:
    """The subject centred at (cx, cy) with half-extent r (canvas pixels)."""
    b, m = subject.body, subject.mark
    e = lambda x0, y0, x1, y1, fill: d.ellipse([cx + x0 * r, cy + y0 * r, cx + x1 * r, cy + y1 * r], fill=fill)
    rect = lambda x0, y0, x1, y1, fill: d.rectangle([cx + x0 * r, cy + y0 * r, cx + x1 * r, cy + y1 * r], fill=fill)
    tri = lambda pts, fill: _poly(d, [(cx + x * r, cy + y * r) for x, y in pts], fill)
    kind = subject.draw
    if kind == "cat":
        tri([(-0.8, -0.3), (-0.65, -1.0), (-0.2, -0.6)], b)
        tri([(0.8, -0.3), (0.65, -1.0), (0.2, -0.6)], b)
        e(-0.85, -0.7, 0.85, 0.9, b)
        for y in (-0.35, 0.05, 0.45):
            rect(-0.7, y, 0.7, y + 0.14, m)
        e(-0.4, -0.25, -0.2, -0.05, (20, 20, 20))
        e(0.2, -0.25, 0.4, -0.05, (20, 20, 20))
    elif kind == "fish":
        tri([(0.5, 0.0), (1.0, -0.55), (1.0, 0.55)], b)
        e(-0.95, -0.55, 0.6, 0.55, b)
        for x, y in ((-0.3, -0.2), (0.1, 0.15), (-0.1, -0.35), (0.25, -0.15), (-0.45, 0.2)):
            e(x - 0.09, y - 0.09, x + 0.09, y + 0.09, m)
        e(-0.75, -0.2, -0.55, 0.0, (20, 20, 20))
    elif kind == "house":
        rect(-0.7, -0.15, 0.7, 0.9, b)
        tri([(-0.9, -0.1), (0.0, -0.95), (0.9, -0.1)], (110, 40, 30))
        rect(-0.5, 0.05, -0.15, 0.35, m)
        rect(0.15, 0.05, 0.5, 0.35, m)
        rect(-0.15, 0.5, 0.15, 0.9, (90, 50, 20))
    elif kind == "tree":
        rect(-0.15, 0.3, 0.15, 0.95, m)
        e(-0.8, -0.95, 0.8, 0.55, b)
    elif kind == "star":
        pts = []
        for k in range(10):
            a = -math.pi / 2 + k * math.pi / 5
            rr = 0.95 if k % 2 == 0 else 0.42
            pts.append((rr * math.cos(a), rr * math.sin(a) + 0.05))
        tri(pts, b)
        e(-0.2, -0.15, 0.2, 0.25, m)
    elif kind == "robot":
        rect(-0.04, -0.95, 0.04, -0.6, b)
        e(-0.12, -1.0, 0.12, -0.8, m)
        rect(-0.7, -0.6, 0.7, 0.85, b)
        rect(-0.45, -0.3, -0.15, -0.05, m)
        rect(0.15, -0.3, 0.45, -0.05, m)
        rect(-0.4, 0.3, 0.4, 0.45, (40, 40, 50))
    elif kind == "mushroom":
        rect(-0.25, 0.0, 0.25, 0.9, (235, 225, 200))
        d.pieslice([cx - 0.9 * r, cy - 0.85 * r, cx + 0.9 * r, cy + 0.55 * r], 180, 360, fill=b)
        for x, y in ((-0.45, -0.3), (0.0, -0.55), (0.45, -0.3), (0.2, -0.2), (-0.2, -0.2)):
            e(x - 0.1, y - 0.1, x + 0.1, y + 0.1, m)
    elif kind == "bird":
        e(-0.75, -0.6, 0.55, 0.7, b)
        tri([(0.45, -0.1), (0.95, 0.05), (0.45, 0.2)], m)
        tri([(-0.5, 0.0), (0.1, 0.05), (-0.3, 0.5)], (90, 40, 140))
        e(0.1, -0.3, 0.3, -0.1, (20, 20, 20))
        rect(-0.2, 0.65, -0.12, 0.95, m)
        rect(0.1, 0.65, 0.18, 0.95, m)


def render(subject: Subject, layout: Layout) -> Image.Image:
    """The plain scene: background + subject, drawn at 2× and reduced (anti-aliased)."""
    scale = 2
    canvas = Image.new("RGB", (SIZE * scale, SIZE * scale), BACKGROUNDS[layout.background])
    px, py = POSITIONS[layout.position]
    dx, dy, factor = layout.jitter
    r = SIZES[layout.size] * factor * SIZE * scale / 2
    draw_subject(ImageDraw.Draw(canvas), subject, (px + dx) * SIZE * scale, (py + dy) * SIZE * scale, r)
    return canvas.resize((SIZE, SIZE), Image.LANCZOS)


def abstract_scene(rng: np.random.Generator) -> Image.Image:
    """Random shapes in random colours: what a style image shows besides its style."""
    canvas = Image.new("RGB", (SIZE, SIZE), tuple(int(c) for c in rng.integers(0, 256, 3)))
    d = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(3, 7))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = rng.uniform(0, SIZE, 2)
        s = rng.uniform(10, 45)
        kind = rng.integers(0, 3)
        if kind == 0:
            d.ellipse([x - s, y - s, x + s, y + s], fill=colour)
        elif kind == 1:
            d.rectangle([x - s, y - s * 0.6, x + s, y + s * 0.6], fill=colour)
        else:
            d.polygon([(x, y - s), (x + s, y + s), (x - s, y + s)], fill=colour)
    return canvas


# ---------------------------------------------------------------------------------------------
# Styles: transforms of a plain scene (uint8 RGB arrays in, out)


def _luma(a):
    return (0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]) / 255.0


def _edges(a):
    l = _luma(a)
    gx = np.abs(np.diff(l, axis=1, append=l[:, -1:]))
    gy = np.abs(np.diff(l, axis=0, append=l[-1:, :]))
    return np.clip((gx + gy) * 4, 0, 1)


def style_pixel(a):
    small = Image.fromarray(a).resize((16, 16), Image.BOX)
    q = (np.asarray(small) // 64) * 85
    return np.asarray(Image.fromarray(q.astype(np.uint8)).resize((SIZE, SIZE), Image.NEAREST))


def style_hatch(a):
    l = _luma(a)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    ink = np.zeros_like(l)
    ink = np.maximum(ink, ((x + y) % 6 < 2) * (l < 0.75))
    ink = np.maximum(ink, ((x - y) % 6 < 2) * (l < 0.45))
    ink = np.maximum(ink, (y % 4 < 2) * (l < 0.2))
    ink = np.maximum(ink, _edges(a) > 0.3)
    paper, pen = np.array([245, 238, 220]), np.array([40, 50, 110])
    return (paper * (1 - ink[..., None]) + pen * ink[..., None]).astype(np.uint8)


def style_neon(a):
    edges = np.asarray(Image.fromarray((_edges(a) * 255).astype(np.uint8)).filter(ImageFilter.MaxFilter(3))) / 255.0
    hue = a.astype(np.float32)
    bright = 255 * (hue - hue.min(-1, keepdims=True)) / (np.ptp(hue, -1, keepdims=True) + 1e-3)
    bright = np.where(np.ptp(hue, -1, keepdims=True) < 20, np.array([255, 60, 220.0]), bright)
    glow = np.asarray(Image.fromarray((edges * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(2))) / 255.0
    base = hue * 0.15
    out = base + bright * np.clip(edges + glow, 0, 1)[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def style_pastel(a):
    blurred = np.asarray(Image.fromarray(a).filter(ImageFilter.GaussianBlur(2.5))).astype(np.float32)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    paper = 8 * np.sin(x / 5.0) * np.cos(y / 7.0)
    out = blurred * 0.55 + 255 * 0.45 + paper[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def style_halftone(a):
    cell = 8
    small = np.asarray(Image.fromarray(a).resize((SIZE // cell, SIZE // cell), Image.BOX)).astype(np.float32)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    cy, cx = y // cell, x // cell
    colour = small[cy, cx]
    darkness = 1 - _luma(small.astype(np.uint8))[cy, cx]
    radius = 1.2 + 3.2 * np.sqrt(np.clip(darkness + 0.25, 0, 1))
    dist = np.hypot(y % cell - cell / 2 + 0.5, x % cell - cell / 2 + 0.5)
    dot = (dist < radius)[..., None]
    return np.where(dot, colour, np.array([250, 250, 245.0])).astype(np.uint8)


def style_duotone(a):
    l = _luma(a)[..., None]
    low, high = np.array([70, 20, 100.0]), np.array([255, 225, 80.0])
    return (low * (1 - l) + high * l).astype(np.uint8)


def style_mosaic(a):
    cell = 8
    small = Image.fromarray(a).resize((SIZE // cell, SIZE // cell), Image.BOX)
    out = np.asarray(small.resize((SIZE, SIZE), Image.NEAREST)).copy()
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    grout = (y % cell == 0) | (x % cell == 0)
    out[grout] = (30, 30, 30)
    return out


def style_negative(a):
    return (255 - a.astype(np.int16)).astype(np.uint8)


STYLES = {  # name -> (transform, caption phrase)
    "pixel": (style_pixel, "in pixel art style"),
    "hatch": (style_hatch, "as a pencil hatching"),
    "neon": (style_neon, "in neon style"),
    "pastel": (style_pastel, "as a pastel watercolor"),
    "halftone": (style_halftone, "in halftone dots"),
    "duotone": (style_duotone, "in purple and yellow duotone"),
    "mosaic": (style_mosaic, "as a tile mosaic"),
    "negative": (style_negative, "as a color negative"),
}
STYLE_NAMES = list(STYLES)
PLAIN = "plain"   # the unstylised rendering (content images, subject-only targets)


def stylise(image: Image.Image, style: str) -> Image.Image:
    if style == PLAIN:
        return image
    return Image.fromarray(STYLES[style][0](np.asarray(image.convert("RGB"))))


def is_held_out(subject: int, style: int) -> bool:
    return (subject - style) % len(STYLE_NAMES) == 0


# ---------------------------------------------------------------------------------------------
# Samples


MODES = ("t2i", "subject", "style", "subject_style", "layout")


@dataclass
class Sample:
    mode: str
    prompt: str
    target: Image.Image
    content: Image.Image | None
    style_image: Image.Image | None
    subject: int
    style: str          # a STYLE_NAMES entry or PLAIN
    layout: Layout


def _draw(seed: int, mode: str, held_out: bool):
    """The random choices of a sample, in the order make_sample takes them: the generator (for what
    follows), subject, style index, content layout and target layout."""
    rng = np.random.default_rng(seed)
    while True:
        subject = int(rng.integers(len(SUBJECTS)))
        style_index = int(rng.integers(len(STYLE_NAMES)))
        if mode == "subject" or is_held_out(subject, style_index) == held_out:
            break
    return rng, subject, style_index, random_layout(rng), random_layout(rng)


def subject_mask(seed: int, mode: str, side: int, held_out: bool = False) -> np.ndarray:
    """[side, side] booleans: the cells of a side × side grid over the target image that the subject
    of sample (seed, mode) covers (its disk of half-extent r, widened by 10% and half a cell)."""
    _, _, _, content_layout, layout = _draw(seed, mode, held_out)
    target = content_layout if mode == "layout" else layout     # the layout mode restyles the content scene
    px, py = POSITIONS[target.position]
    dx, dy, factor = target.jitter
    radius = 1.1 * SIZES[target.size] * factor / 2 + 0.5 / side
    centres = (np.arange(side) + 0.5) / side
    return (centres[None, :] - (px + dx)) ** 2 + (centres[:, None] - (py + dy)) ** 2 <= radius ** 2


def make_sample(seed: int, mode: str, held_out: bool = False) -> Sample:
    """One training (held_out=False) or evaluation (held_out=True) sample of `mode`, by seed."""
    rng, subject, style_index, content_layout, layout = _draw(seed, mode, held_out)
    style = STYLE_NAMES[style_index]
    name = SUBJECTS[subject].name
    style_image = stylise(abstract_scene(rng), style)
    content = render(SUBJECTS[subject], content_layout)
    if mode == "t2i":
        if rng.random() < 0.3:
            style = PLAIN
        phrase = "" if style == PLAIN else ", " + STYLES[style][1]
        return Sample(mode, layout.caption(name) + phrase, stylise(render(SUBJECTS[subject], layout), style),
                      None, None, subject, style, layout)
    if mode == "subject":       # identity from the content image, layout from a prompt without the name
        return Sample(mode, layout.caption("subject"), render(SUBJECTS[subject], layout), content, None,
                      subject, PLAIN, layout)
    if mode == "style":         # style from the style image, everything else from the prompt
        return Sample(mode, layout.caption(name), stylise(render(SUBJECTS[subject], layout), style), None,
                      style_image, subject, style, layout)
    if mode == "subject_style":
        return Sample(mode, layout.caption("subject"), stylise(render(SUBJECTS[subject], layout), style), content,
                      style_image, subject, style, layout)
    if mode == "layout":        # empty prompt: keep the content image's layout, restyle it
        return Sample(mode, "", stylise(content, style), content, style_image, subject, style, content_layout)
    raise ValueError(mode)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--example", nargs=2, metavar=("SUBJECT", "STYLE"),
                        help="instead, write the README's inputs: subject.png (SUBJECT index, plain) and style.png")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.example:
        subject, style = int(args.example[0]), args.example[1]
        render(SUBJECTS[subject], Layout("center", "large", "light")).save(args.out / "subject.png")
        stylise(abstract_scene(np.random.default_rng(2025)), style).save(args.out / "style.png")
        print(f"{SUBJECTS[subject].name} + {style}; held out: {is_held_out(subject, STYLE_NAMES.index(style))}")
        return
    rows = []
    for i in range(args.count):
        for mode in MODES:
            s = make_sample(1000 * i + MODES.index(mode), mode)
            blank = Image.new("RGB", (SIZE, SIZE), (128, 128, 128))
            rows.append([s.content or blank, s.style_image or blank, s.target])
            print(f"{mode:14s} subject={s.subject} style={s.style:9s} prompt={s.prompt!r}")
    grid = Image.new("RGB", (3 * SIZE, len(rows) * SIZE))
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            grid.paste(im, (c * SIZE, r * SIZE))
    grid.save(args.out / "triplets.png")
    styles = Image.new("RGB", (len(STYLE_NAMES) * SIZE, len(SUBJECTS) * SIZE))
    for si, subject in enumerate(SUBJECTS):
        plain = render(subject, Layout("center", "large", list(BACKGROUNDS)[si % len(BACKGROUNDS)]))
        for ki, style in enumerate(STYLE_NAMES):
            styles.paste(stylise(plain, style), (ki * SIZE, si * SIZE))
    styles.save(args.out / "subjects_x_styles.png")


if __name__ == "__main__":
    main()
