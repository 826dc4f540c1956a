"""Quick health checks of a training checkpoint, cheaper than evaluate.py (about a minute):

  autoencoder  PSNR of VAE round trips on plain and on styled targets, beside naive thumbnails
               (area-down to 16² / 32², bicubic back up). Styled textures are beyond any 8× code, so
               the plain column is the one that tells a good autoencoder from a poor one.
  DiT          the flow loss on one batch of cached training samples per mode at fixed t, with the
               conditions matched and with the content images shuffled within the batch. At t = 1 the
               input is pure noise: in the layout mode the target is then fully set by the conditions,
               so a model that copies its content approaches 0 there, and the shuffled loss shows how
               much it relies on the content.

  python3 tools/uso_mini/diagnose.py --checkpoint tools/uso_mini/runs/r7/state.pt
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import data  # noqa: E402
import pipeline  # noqa: E402
import train  # noqa: E402
from model import MiniConfig, USOMini  # noqa: E402


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * np.log10(4 / float(((a - b) ** 2).mean()))     # images in [−1, 1]


@torch.no_grad()
def autoencoder_report(models: USOMini, count: int):
    rng = np.random.default_rng(123)
    for label, mode in (("plain targets", "subject"), ("styled targets", "subject_style")):
        x = torch.cat([pipeline.to_signed_tensor(data.make_sample(int(rng.integers(2**31)), mode).target)
                       for _ in range(count)])
        vae = psnr(models.vae.decoder(models.vae.moments(x)[0]), x)
        naive = [psnr(F.interpolate(F.interpolate(x, size=(s, s), mode="area"), size=x.shape[-2:], mode="bicubic")
                      .clamp(-1, 1), x) for s in (16, 32)]
        print(f"autoencoder, {label}: VAE {vae:.2f} dB | thumbnail 16² {naive[0]:.2f} dB, 32² {naive[1]:.2f} dB")


@torch.no_grad()
def dit_report(models: USOMini, cache: dict, batch: int, use_lora: bool):
    generator = torch.Generator().manual_seed(0)
    for mode in ("t2i", "subject", "layout", "subject_style"):
        entry = cache["modes"][mode]
        idx = torch.arange(batch) * 37 % entry["target"].shape[0]
        x0 = pipeline.pack(entry["target"][idx])
        prompts = entry["prompt"][idx].tolist()
        txt, bias = train.text_batch(cache, prompts, models.cfg.t5_width)
        length = txt.shape[1]
        style = None
        if mode in ("subject_style", "layout"):
            style = train.project_style(models, cache["style_hidden"][entry["style"][idx], torch.zeros(batch, dtype=torch.long)])
        cells = []
        for t in (0.3, 0.7, 0.9, 1.0):
            noise = torch.randn(x0.shape, generator=generator)
            xt = (1 - t) * x0 + t * noise
            losses = []
            for shuffled in ((False, True) if "content" in entry else (False,)):
                refs, ref_ids = [], []
                if "content" in entry:
                    content = entry["content"][idx]
                    refs = [pipeline.pack(content.roll(1, 0) if shuffled else content)]
                    ref_ids = [pipeline.reference_ids(16, 16, 16, 16, batch=batch)]
                v = models.dit(xt, pipeline.grid_ids(8, 8, batch=batch), txt, torch.zeros(batch, length, 3),
                               torch.full((batch,), t), cache["pooled"][prompts], torch.full((batch,), 4.0), refs,
                               ref_ids, style, use_lora=use_lora, txt_key_bias=bias)
                losses.append(float(((v - (noise - x0)) ** 2).mean()))
            cells.append(f"t={t}: " + " / ".join(f"{value:.3f}" for value in losses))
        print(f"DiT {mode:13s} (matched / content shuffled): " + " | ".join(cells))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=pathlib.Path, required=True, help="runs/NAME/state.pt")
    parser.add_argument("--images", type=int, default=16, help="targets per autoencoder row")
    parser.add_argument("--batch", type=int, default=16, help="cached samples per DiT row")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    models = USOMini(MiniConfig(**state["config"]), seed=0)
    models.load_state_dict(state["models"])
    models.eval()
    print(f"{args.checkpoint}: stage '{state['stage']}', step {state['step']}")
    autoencoder_report(models, args.images)
    cache_path = args.checkpoint.parent / "cache.pt"
    if STAGE_ORDER.index(state["stage"]) <= STAGE_ORDER.index("cache") or not cache_path.exists():
        print("DiT: no cache for this checkpoint's autoencoder yet (the run has not passed its cache stage)")
        return
    cache = torch.load(cache_path, map_location="cpu", weights_only=False)
    dit_report(models, cache, args.batch, use_lora=STAGE_ORDER.index(state["stage"]) > STAGE_ORDER.index("align"))


STAGE_ORDER = train.STAGES + ("done",)

if __name__ == "__main__":
    main()
