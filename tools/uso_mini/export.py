"""Writes a uso-mini model set as DefaultModel/, in the reference downloader's layout and the real
file formats (spec §1.3 table of weight files):

  FLUX.1-dev/{flux1-dev.safetensors (BF16), ae.safetensors (BF16)}
  USO/uso_flux_v1.0/{dit_lora.safetensors, projector.safetensors} (BF16)
  t5-xxl/{config.json, model.safetensors, tokenizer.json}
  clip-vit-l14/{config.json, model.safetensors, vocab.json, merges.txt}
  siglip/{config.json, model.safetensors, preprocessor_config.json}
  uso-defaults.json, README.md

Usage:
  python3 tools/uso_mini/export.py --untrained            # the seeded random initialisation
  python3 tools/uso_mini/export.py --checkpoint tools/uso_mini/runs/main/stage2.pt
  (--out DIR, default DefaultModel/ at the repository root)
"""
from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import sys

import torch
from safetensors.torch import save_file
from transformers.models.clip.tokenization_clip import bytes_to_unicode

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from model import MiniConfig, USOMini  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
VOCAB = pathlib.Path("/work/shared/vocab") if pathlib.Path("/work/shared/vocab").exists() else ROOT / "tools/uso_mini/vocab"
T5_TOKENIZER = VOCAB / "t5-tokenizer.json"
CLIP_MERGES = VOCAB / "clip-bpe-merges.txt"

# Settings this model was trained for (read by `uso generate` when it runs the bundled default).
DEFAULT_SETTINGS = {"width": 128, "height": 128, "content_ref": 128, "num_steps": 12, "guidance": 4.0, "seed": 3407}


def clip_vocabulary(merges_path: pathlib.Path) -> dict[str, int]:
    """vocab.json of openai/clip-vit-large-patch14, rebuilt from its merges (see shared/vocab/README):
    the 256 byte symbols, the same with </w>, every merge joined, then the two special tokens."""
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols]
    lines = merges_path.read_text(encoding="utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:] if line.strip()]
    vocab += ["".join(pair) for pair in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {token: index for index, token in enumerate(vocab)}


def half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to(torch.bfloat16).contiguous() for k, v in state.items()}


def full(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().contiguous() for k, v in state.items()}


def write_json(path: pathlib.Path, value) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n")


SIGLIP_PREPROCESSOR = {
    "do_normalize": True, "do_rescale": True, "do_resize": True,
    "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
    "image_processor_type": "SiglipImageProcessor", "processor_class": "SiglipProcessor",
    "resample": 3, "rescale_factor": 1 / 255,
}


def export(models: USOMini, out: pathlib.Path, provenance: str, settings: dict | None = None) -> dict[str, int]:
    """Writes every file; returns {relative path: bytes}."""
    cfg = models.cfg
    meta = {"format": "pt"}
    if out.exists():
        shutil.rmtree(out)
    flux, uso, t5, clip, siglip = (out / p for p in ("FLUX.1-dev", "USO/uso_flux_v1.0", "t5-xxl", "clip-vit-l14", "siglip"))
    for folder in (flux, uso, t5, clip, siglip):
        folder.mkdir(parents=True)

    save_file(half(models.dit.base_state_dict()), str(flux / "flux1-dev.safetensors"), metadata=meta)
    # BF16 keeps the 5.8 M-parameter autoencoder at 12 MB (the repository budget is ~40 MB in all).
    save_file(half(models.vae.state_dict()), str(flux / "ae.safetensors"), metadata=meta)
    save_file(half(models.dit.lora_state_dict()), str(uso / "dit_lora.safetensors"), metadata=meta)
    save_file(half(models.projector.state_dict()), str(uso / "projector.safetensors"), metadata=meta)

    # T5: the shared embedding once (encoder.embed_tokens is the same tensor), encoder weights.
    t5_state = {k: v for k, v in models.t5.state_dict().items() if k != "encoder.embed_tokens.weight"}
    save_file(half(t5_state), str(t5 / "model.safetensors"), metadata=meta)
    models.t5.config.to_json_file(str(t5 / "config.json"))
    shutil.copyfile(T5_TOKENIZER, t5 / "tokenizer.json")

    save_file(half(models.clip.state_dict()), str(clip / "model.safetensors"), metadata=meta)
    models.clip.config.to_json_file(str(clip / "config.json"))
    (clip / "vocab.json").write_text(json.dumps(clip_vocabulary(CLIP_MERGES), ensure_ascii=False))
    shutil.copyfile(CLIP_MERGES, clip / "merges.txt")

    save_file(full(models.siglip.state_dict()), str(siglip / "model.safetensors"), metadata=meta)
    models.siglip.config.to_json_file(str(siglip / "config.json"))
    write_json(siglip / "preprocessor_config.json",
               {**SIGLIP_PREPROCESSOR, "size": {"height": cfg.siglip_image, "width": cfg.siglip_image}})

    write_json(out / "uso-mini.json", cfg.to_json())   # the hyperparameters, for the Python tools only
    write_json(out / "uso-defaults.json", {**DEFAULT_SETTINGS, **(settings or {})})
    (out / "README.md").write_text(readme(cfg, provenance))
    return {str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}


def readme(cfg: MiniConfig, provenance: str) -> str:
    return f"""# uso-mini (bundled default model)

A tiny model of the USO family, made by uso's own tools (`tools/uso_mini/`, see `docs/uso-mini.md`),
stored in exactly the files, formats and key layouts of the real model set so that `uso generate`
loads it through the same code as the real weights:

| file | what | dtype |
|---|---|---|
| FLUX.1-dev/flux1-dev.safetensors | FLUX DiT, BFL layout: hidden {cfg.hidden}, {cfg.heads} heads of {cfg.head_dim}, {cfg.double_blocks} double + {cfg.single_blocks} single blocks, guidance embedding | BF16 |
| FLUX.1-dev/ae.safetensors | FLUX autoencoder, 16 latent channels, 8x downsampling, ch {cfg.vae_ch}, ch_mult {cfg.vae_ch_mult}, scale {cfg.vae_scale} / shift {cfg.vae_shift} | BF16 |
| USO/uso_flux_v1.0/dit_lora.safetensors | USO LoRA on every double/single block, rank {cfg.lora_rank}, scale 1 | BF16 |
| USO/uso_flux_v1.0/projector.safetensors | style projector (feature_embedder.*), 729 -> {cfg.style_tokens_per_branch} tokens per branch | BF16 |
| t5-xxl/ | T5 v1.1 encoder (Hugging Face layout + config.json), width {cfg.t5_width}, 2 layers; the real T5 tokenizer | BF16 |
| clip-vit-l14/ | CLIP text model (Hugging Face layout + config.json), width {cfg.clip_width}, 2 layers; the real CLIP BPE | BF16 |
| siglip/ | SigLIP vision tower, 384 px, patch 14, {cfg.siglip_layers} layers of width {cfg.siglip_width} | F32 |

Recommended settings (`uso-defaults.json`): {json.dumps(DEFAULT_SETTINGS)}.

Provenance: {provenance}

It knows only the procedural world of `tools/uso_mini/data.py`: a few sprite subjects with their own
colours and markings, placed and sized as the prompt says on plain backgrounds, painted in a few
procedural styles. Prompts look like "a small orange striped cat at the top left on a dark background".

Licences: the weights are uso's own (same licence as the repository). The tokenizer files are the
real ones: `t5-xxl/tokenizer.json` is the T5 v1.1 tokenizer (Apache-2.0); `clip-vit-l14/merges.txt`
is OpenAI CLIP's BPE merge list (MIT) and `vocab.json` is derived from it.
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--untrained", action="store_true", help="export the seeded random initialisation")
    source.add_argument("--checkpoint", type=pathlib.Path, help="a training checkpoint (train.py)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "DefaultModel")
    args = parser.parse_args()
    if args.untrained:
        models = USOMini(seed=args.seed)
        provenance = f"UNTRAINED: the random initialisation of seed {args.seed} (export.py --untrained). It draws noise."
        settings = None
    else:
        checkpoint = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
        models = USOMini(MiniConfig(**checkpoint["config"]), seed=args.seed)
        models.load_state_dict(checkpoint["models"])
        provenance = checkpoint.get("provenance", f"trained, checkpoint {args.checkpoint.name}")
        settings = checkpoint.get("settings")
    sizes = export(models, args.out, provenance, settings)
    for name, size in sizes.items():
        print(f"{size:>12,}  {name}")
    print(f"{sum(sizes.values()):>12,}  total in {args.out}")


if __name__ == "__main__":
    main()
