"""The USO inference pipeline in torch, F32 on the CPU, as the reference computes it (spec §2, §7, §8):
tokenise (T5 512 / CLIP 77, padding not masked), content reference (Lanczos to the long side, centre
crop to /16, VAE posterior mean, scaled), style images (SigLIP processor -> tower -> projector),
seeded noise, shifted schedule with mu from floor(W·H/16384), Euler steps, decode, clamp, truncate.

Used by training (sampling for evaluation), by reference_generate.py (the parity oracle) and
evaluate.py. `load_model_dir` reads a DefaultModel-style folder back into a USOMini.
"""
from __future__ import annotations

import json
import math
import pathlib

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import CLIPTokenizer, T5TokenizerFast

from model import MiniConfig, USOMini


# ---------------------------------------------------------------------------------------------
# Tokenisers and text


class Tokenizers:
    def __init__(self, model_dir: pathlib.Path):
        self.t5 = T5TokenizerFast(tokenizer_file=str(model_dir / "t5-xxl/tokenizer.json"))
        self.clip = CLIPTokenizer(str(model_dir / "clip-vit-l14/vocab.json"), str(model_dir / "clip-vit-l14/merges.txt"),
                                  pad_token="<|endoftext|>")

    def __call__(self, prompts: list[str]):
        t5 = self.t5(prompts, padding="max_length", max_length=512, truncation=True, return_tensors="pt").input_ids
        clip = self.clip(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        return t5, clip


# ---------------------------------------------------------------------------------------------
# Images


def preprocess_content(image: Image.Image, long_side: int) -> Image.Image:
    """Spec §2.1: Lanczos so the long side is `long_side` (short side floored), centre crop to /16."""
    image = image.convert("RGB")
    w, h = image.size
    if (w, h) == (16, 16):
        return image
    if w >= h:
        nw, nh = long_side, int((long_side / w) * h)
    else:
        nw, nh = int((long_side / h) * w), long_side
    image = image.resize((nw, nh), Image.LANCZOS)
    tw, th = 16 * (nw // 16), 16 * (nh // 16)
    left, top = (nw - tw) // 2, (nh - th) // 2
    return image.crop((left, top, left + tw, top + th))


def to_signed_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> [1,3,H,W] float32 in [-1,1] (to_tensor, then x·2−1)."""
    array = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.uint8).copy())
    return (array.permute(2, 0, 1).float() / 255.0 * 2 - 1)[None]


def siglip_pixels(image: Image.Image, side: int = 384) -> torch.Tensor:
    """Spec §2.2: squash to side×side with Pillow BICUBIC, ×1/255 in float64 -> float32, (x−0.5)/0.5."""
    resized = image.convert("RGB").resize((side, side), Image.BICUBIC)
    values = (np.asarray(resized, dtype=np.float64) * (1 / 255)).astype(np.float32)
    values = (values - np.float32(0.5)) / np.float32(0.5)
    return torch.from_numpy(values).permute(2, 0, 1)[None].contiguous()


def to_image(x: torch.Tensor) -> Image.Image:
    """Decoder output [1,3,H,W] -> uint8 by clamp, 127.5·(x+1) and truncation (spec §8)."""
    x = x.clamp(-1, 1)[-1].permute(1, 2, 0)
    return Image.fromarray((127.5 * (x + 1.0)).byte().numpy())


# ---------------------------------------------------------------------------------------------
# Latents and positions (spec §2.3, §4.3)


def pack(latent: torch.Tensor) -> torch.Tensor:
    """[B,C,h,w] -> [B,(h/2)(w/2),4C], feature = ch·4 + dy·2 + dx."""
    b, c, h, w = latent.shape
    return latent.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    b, _, f = tokens.shape
    c = f // 4
    return tokens.reshape(b, h // 2, w // 2, c, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


def grid_ids(rows: int, cols: int, row_offset: int = 0, col_offset: int = 0, batch: int = 1) -> torch.Tensor:
    """Token-grid position ids (0, r + row_offset, c + col_offset), [B, rows·cols, 3]."""
    ids = torch.zeros(rows, cols, 3)
    ids[..., 1] = torch.arange(rows)[:, None] + row_offset
    ids[..., 2] = torch.arange(cols)[None, :] + col_offset
    return ids.reshape(1, rows * cols, 3).expand(batch, -1, -1)


def reference_ids(target_h: int, target_w: int, ref_h: int, ref_w: int, pe: str = "d", batch: int = 1):
    """Ids of one content reference (latent sizes in latent pixels), offset by the target grid."""
    sh, sw = target_h // 2, target_w // 2
    row = sh if pe in ("d", "h") else 0
    col = sw if pe in ("d", "w") else 0
    return grid_ids(ref_h // 2, ref_w // 2, row, col, batch)


# ---------------------------------------------------------------------------------------------
# Schedule (spec §7.2)


def schedule(num_steps: int, width: int, height: int) -> list[float]:
    seq = (width // 8) * (height // 8) // 256       # the reference's floor(W·H/16384), not the token count
    m = (1.15 - 0.5) / (4096 - 256)
    mu = m * seq + (0.5 - m * 256)
    t = torch.linspace(1, 0, num_steps + 1)
    t = math.exp(mu) / (math.exp(mu) + (1 / t - 1) ** 1.0)
    return t.tolist()


# ---------------------------------------------------------------------------------------------
# Generation


@torch.no_grad()
def generate(models: USOMini, tokenizers: Tokenizers, prompt: str, content: Image.Image | None = None,
             styles: tuple[Image.Image, ...] = (), width: int = 128, height: int = 128, num_steps: int = 12,
             guidance: float = 4.0, seed: int = 3407, content_ref: int = 128, pe: str = "d",
             latent_sink: dict | None = None) -> Image.Image:
    """One image; `latent_sink["tokens"]` receives the final packed latent if a dict is given."""
    cfg = models.cfg
    width, height = width // 16 * 16, height // 16 * 16
    refs, ref_ids = [], []
    if content is not None:
        ref_latent = models.vae.encode(to_signed_tensor(preprocess_content(content, content_ref)))
        refs.append(pack(ref_latent))
        ref_ids.append(reference_ids(height // 8, width // 8, ref_latent.shape[2], ref_latent.shape[3], pe))
    style = torch.cat([models.style_tokens(siglip_pixels(s, cfg.siglip_image)) for s in styles], 1) if styles else None
    t5_ids, clip_ids = tokenizers([prompt])
    txt, y = models.encode_text(t5_ids, clip_ids)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn((1, cfg.latent_channels, height // 8, width // 8), generator=generator, dtype=torch.float32)
    img = pack(noise)
    img_ids = grid_ids(height // 16, width // 16)
    txt_ids = torch.zeros(1, txt.shape[1], 3)
    g = torch.full((1,), guidance)
    ts = schedule(num_steps, width, height)
    for t_cur, t_next in zip(ts[:-1], ts[1:]):
        v = models.dit(img, img_ids, txt, txt_ids, torch.full((1,), t_cur), y, g, refs, ref_ids, style)
        img = img + (t_next - t_cur) * v
    if latent_sink is not None:
        latent_sink["tokens"] = img
    return to_image(models.vae.decode(unpack(img, height // 8, width // 8)))


# ---------------------------------------------------------------------------------------------
# Reading an exported folder back


def load_model_dir(model_dir: pathlib.Path) -> USOMini:
    """A USOMini whose weights are exactly the exported files (BF16 ones widened to F32)."""
    hyper = json.loads((model_dir / "uso-mini.json").read_text()) if (model_dir / "uso-mini.json").exists() else {}
    models = USOMini(MiniConfig(**hyper))

    dit_state = {}
    for name in ("FLUX.1-dev/flux1-dev.safetensors", "USO/uso_flux_v1.0/dit_lora.safetensors"):
        dit_state.update({k: v.float() for k, v in load_file(str(model_dir / name)).items()})
    models.dit.load_state_dict(dit_state)      # strict: every key of the base + LoRA, nothing else
    models.projector.load_state_dict({k: v.float() for k, v in load_file(str(model_dir / "USO/uso_flux_v1.0/projector.safetensors")).items()})
    models.vae.load_state_dict(load_file(str(model_dir / "FLUX.1-dev/ae.safetensors")))
    t5_state = {k: v.float() for k, v in load_file(str(model_dir / "t5-xxl/model.safetensors")).items()}
    t5_state["encoder.embed_tokens.weight"] = t5_state["shared.weight"]
    models.t5.load_state_dict(t5_state)
    models.clip.load_state_dict({k: v.float() for k, v in load_file(str(model_dir / "clip-vit-l14/model.safetensors")).items()})
    models.siglip.load_state_dict(load_file(str(model_dir / "siglip/model.safetensors")))
    return models.eval()
