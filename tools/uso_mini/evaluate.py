"""Measures uso-mini as the paper measures USO, on held-out subject × style pairs (data.is_held_out):
two small classifiers (subject identity, style) trained on the generator's ground truth score the
images generated in four modes, beside the same scores for the random initialisation and for the
ground-truth targets. Writes a markdown table and a grid of examples.

  nice -n 10 python3 tools/uso_mini/evaluate.py --model-dir DefaultModel --out docs/uso-mini
  (--per-mode N samples per mode, default 24; --steps default from uso-defaults.json)

With --test-fixtures DIR it also writes what the Swift quality test needs (no Python at test time): the
two classifiers (classifiers.safetensors, keys subject.* and style.*) and the first --test-cases
held-out samples of every mode (inputs as PNG, prompt, seed and true labels in cases.json).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter
from safetensors.torch import load_file, save_file
from torch import nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import data  # noqa: E402
import pipeline  # noqa: E402
from model import USOMini  # noqa: E402

STYLE_CLASSES = [data.PLAIN] + data.STYLE_NAMES
EVAL_MODES = {"subject": "subject only", "style": "style only", "subject_style": "subject + style",
              "layout": "layout-preserving (empty prompt)"}


# ---------------------------------------------------------------------------------------------
# Classifiers


class SmallCNN(nn.Module):
    """Five stride-2 3x3 convolutions with SiLU, then the global mean and the global max of every channel and a
    linear head: only ops uso's tensor engine has, so the Swift quality test (DefaultModelQualityTests) runs the
    same classifiers. The max finds a small subject anywhere; the mean measures a style's texture."""
    WIDTHS = (3, 32, 48, 64, 96, 128)

    def __init__(self, classes: int):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(self.WIDTHS, self.WIDTHS[1:]))
        self.head = nn.Linear(2 * self.WIDTHS[-1], classes)

    def forward(self, x):
        for conv in self.convs:
            x = F.silu(conv(x))
        return self.head(torch.cat([x.mean((2, 3)), x.amax((2, 3))], 1))


def images_to_tensor(images) -> torch.Tensor:
    return torch.cat([pipeline.to_signed_tensor(im) for im in images])


def ground_truth_images(count: int, seed: int, held_out: bool):
    """Targets of every mode with their labels; training pairs, or the held-out pairs for validation."""
    rng = np.random.default_rng(seed)
    images, subjects, styles = [], [], []
    for _ in range(count):
        s = data.make_sample(int(rng.integers(2**31)), str(rng.choice(data.MODES)), held_out=held_out)
        images.append(s.target)
        subjects.append(s.subject)
        styles.append(STYLE_CLASSES.index(s.style))
    return images, {"subject": subjects, "style": styles}


def train_classifiers(count: int, steps: int, seed: int = 1):
    """Subject and style classifiers on ground-truth targets (training pairs only). Half of every batch is
    blurred by a random amount, because generated images come out of an autoencoder and are softer than the
    drawings; the classifiers must judge content and style, not sharpness."""
    images, labels = ground_truth_images(count, seed, held_out=False)
    sharp = images_to_tensor(images)
    soft = images_to_tensor([im.filter(ImageFilter.GaussianBlur(float(r)))
                             for im, r in zip(images, np.random.default_rng(seed).uniform(0.5, 1.5, count))])
    labels = {k: torch.tensor(v) for k, v in labels.items()}
    classifiers = {}
    for name, classes in (("subject", len(data.SUBJECTS)), ("style", len(STYLE_CLASSES))):
        torch.manual_seed(seed)
        net = SmallCNN(classes)
        opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-4)
        for step in range(steps):
            for group in opt.param_groups:
                group["lr"] = 2e-3 * 0.5 * (1 + np.cos(np.pi * step / steps))
            idx = torch.randint(0, count, (32,))
            x = torch.cat([sharp[idx[:16]], soft[idx[16:]]])
            loss = F.cross_entropy(net(x), labels[name][idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % 100 == 0:
                sys.stderr.write(f"\rclassifier {name} {step}/{steps} loss {loss.item():.3f} ")
        classifiers[name] = net.eval()
    sys.stderr.write("\n")
    return classifiers


def save_classifiers(classifiers: dict, path: pathlib.Path):
    save_file({f"{name}.{key}": value.contiguous() for name, net in classifiers.items()
               for key, value in net.state_dict().items()}, path)


def load_classifiers(path: pathlib.Path) -> dict:
    tensors = load_file(path)
    classifiers = {}
    for name, classes in (("subject", len(data.SUBJECTS)), ("style", len(STYLE_CLASSES))):
        net = SmallCNN(classes)
        net.load_state_dict({k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")})
        classifiers[name] = net.eval()
    return classifiers


@torch.no_grad()
def accuracy(net, images, labels) -> float:
    pred = net(images_to_tensor(images)).argmax(-1)
    return float((pred == torch.tensor(labels)).float().mean())


# ---------------------------------------------------------------------------------------------
# Batched generation (the pipeline's math, with the exact compact text form of model.compact_text)


@torch.no_grad()
def generate_batch(models: USOMini, tokenizers, samples, steps: int, guidance: float, seeds) -> list[Image.Image]:
    b = len(samples)
    t5_ids, clip_ids = tokenizers([s.prompt for s in samples])
    y = models.clip(input_ids=clip_ids).pooler_output
    texts = [models.compact_text(row) for row in t5_ids]
    length = max(t.shape[0] for t, _ in texts)
    txt = torch.zeros(b, length, models.cfg.t5_width)
    bias = torch.full((b, length), -1e9)
    for row, (t, kb) in enumerate(texts):
        txt[row, :t.shape[0]], bias[row, :t.shape[0]] = t, kb
    refs, ref_ids = [], []
    if samples[0].content is not None:
        refs = [pipeline.pack(models.vae.encode(images_to_tensor([s.content for s in samples])))]
        ref_ids = [pipeline.reference_ids(16, 16, 16, 16, batch=b)]
    style = None
    if samples[0].style_image is not None:
        style = models.style_tokens(torch.cat([pipeline.siglip_pixels(s.style_image) for s in samples]))
    noise = torch.cat([torch.randn((1, 16, 16, 16), generator=torch.Generator().manual_seed(seed)) for seed in seeds])
    img = pipeline.pack(noise)
    ts = pipeline.schedule(steps, 128, 128)
    for t_cur, t_next in zip(ts[:-1], ts[1:]):
        v = models.dit(img, pipeline.grid_ids(8, 8, batch=b), txt, torch.zeros(b, length, 3), torch.full((b,), t_cur), y,
                       torch.full((b,), guidance), refs, ref_ids, style, txt_key_bias=bias)
        img = img + (t_next - t_cur) * v
    decoded = models.vae.decode(pipeline.unpack(img, 16, 16))
    return [pipeline.to_image(decoded[i:i + 1]) for i in range(b)]


def held_out_samples(mode: str, count: int) -> list:
    return [data.make_sample(900_000_000 + 1000 * list(EVAL_MODES).index(mode) + i, mode, held_out=True)
            for i in range(count)]


def write_test_fixtures(out: pathlib.Path, classifiers: dict, cases_per_mode: int, steps: int, guidance: float):
    out.mkdir(parents=True, exist_ok=True)
    save_classifiers(classifiers, out / "classifiers.safetensors")
    cases = []
    for mode in EVAL_MODES:
        for i, s in enumerate(held_out_samples(mode, cases_per_mode)):
            case = {"mode": mode, "prompt": s.prompt, "seed": i, "subject": s.subject, "style": STYLE_CLASSES.index(s.style)}
            for role, image in (("content", s.content), ("style_image", s.style_image)):
                if image is not None:
                    case[role] = f"{mode}-{i}-{role.split('_')[0]}.png"
                    image.save(out / case[role])
            cases.append(case)
    meta = {"subjects": [subject.name for subject in data.SUBJECTS], "styles": STYLE_CLASSES,
            "width": 128, "height": 128, "num_steps": steps, "guidance": guidance, "cases": cases}
    (out / "cases.json").write_text(json.dumps(meta, indent=2) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=pathlib.Path, required=True)
    parser.add_argument("--out", type=pathlib.Path, required=True, help="folder for eval.json, eval.md, grid.png")
    parser.add_argument("--per-mode", type=int, default=24)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--classifier-images", type=int, default=4000)
    parser.add_argument("--classifier-steps", type=int, default=3000)
    parser.add_argument("--classifiers", type=pathlib.Path,
                        help="classifiers.safetensors to use; trained and written there if it does not exist")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--test-fixtures", type=pathlib.Path, help="also write the Swift quality test's fixtures here")
    parser.add_argument("--test-cases", type=int, default=2, help="held-out samples per mode in the test fixtures")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    defaults = json.loads((args.model_dir / "uso-defaults.json").read_text())
    steps, guidance = args.steps or defaults["num_steps"], defaults["guidance"]
    t0 = time.time()
    if args.classifiers and args.classifiers.exists():
        classifiers = load_classifiers(args.classifiers)
    else:
        classifiers = train_classifiers(args.classifier_images, args.classifier_steps)
        print(f"classifiers trained in {time.time() - t0:.0f} s")
        if args.classifiers:
            save_classifiers(classifiers, args.classifiers)
    if args.test_fixtures:
        write_test_fixtures(args.test_fixtures, classifiers, args.test_cases, steps, guidance)
    tokenizers = pipeline.Tokenizers(args.model_dir)
    systems = {"uso-mini": pipeline.load_model_dir(args.model_dir), "random weights": USOMini(seed=0).eval()}
    results, grid_rows = {}, []
    for mode, title in EVAL_MODES.items():
        samples = held_out_samples(mode, args.per_mode)
        subjects = [s.subject for s in samples]
        styles = [STYLE_CLASSES.index(s.style) for s in samples]
        row = {"ground truth": (accuracy(classifiers["subject"], [s.target for s in samples], subjects),
                                accuracy(classifiers["style"], [s.target for s in samples], styles))}
        # The ceiling the autoencoder leaves: the targets encoded and decoded by uso-mini's VAE.
        vae = systems["uso-mini"].vae
        with torch.no_grad():
            round_trip = [pipeline.to_image(vae.decode(vae.encode(pipeline.to_signed_tensor(s.target)))) for s in samples]
        row["ground truth through the VAE"] = (accuracy(classifiers["subject"], round_trip, subjects),
                                               accuracy(classifiers["style"], round_trip, styles))
        generated = {}
        for name, models in systems.items():
            images = []
            for i in range(0, len(samples), 8):
                images += generate_batch(models, tokenizers, samples[i:i + 8], steps, guidance, range(i, i + len(samples[i:i + 8])))
            generated[name] = images
            row[name] = (accuracy(classifiers["subject"], images, subjects), accuracy(classifiers["style"], images, styles))
        results[title] = row
        print(title, {k: tuple(round(v, 3) for v in val) for k, val in row.items()}, f"{time.time() - t0:.0f} s")
        blank = Image.new("RGB", (128, 128), (128, 128, 128))
        for s, image in list(zip(samples, generated["uso-mini"]))[:3]:
            grid_rows.append([s.content or blank, s.style_image or blank, image, s.target])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "eval.json").write_text(json.dumps(results, indent=2) + "\n")
    columns = ("uso-mini", "random weights", "ground truth", "ground truth through the VAE")
    lines = ["| mode (held-out pairs) | " + " | ".join(f"{c} subject | {c} style" for c in columns) + " |",
             "|---" * (1 + 2 * len(columns)) + "|"]
    for title, row in results.items():
        cells = [f"{row[k][j]:.2f}" for k in columns for j in (0, 1)]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines.append(f"\nChance: subject {1 / len(data.SUBJECTS):.2f}, style {1 / len(STYLE_CLASSES):.2f}. "
                 f"{args.per_mode} samples per mode, {steps} steps, guidance {guidance}.")
    (args.out / "eval.md").write_text("\n".join(lines) + "\n")
    grid = Image.new("RGB", (4 * 128, len(grid_rows) * 128))
    for r, row in enumerate(grid_rows):
        for c, im in enumerate(row):
            grid.paste(im, (c * 128, r * 128))
    grid.save(args.out / "grid.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
