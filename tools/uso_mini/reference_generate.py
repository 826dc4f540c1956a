"""The end-to-end parity oracle: one image from a DefaultModel-style folder, computed by the torch
pipeline (pipeline.py) exactly as the reference would on the CPU in F32: torch.Generator().manual_seed
noise of shape [1,16,H/8,W/8] in float32, the VAE posterior MEAN for the content latent, the shifted
schedule, Euler steps, decode, clamp, truncation to uint8.

  python3 tools/uso_mini/reference_generate.py --model-dir DefaultModel \
      --prompt "a red striped cat at the top left on a dark background" \
      --content content.png --style style.png --seed 3407 --out reference.png
  (--width/--height/--num-steps/--guidance/--content-ref/--pe default to DefaultModel/uso-defaults.json)

Also writes OUT.json with every input and setting, and OUT.latent.safetensors with the final packed
latent tokens [1,N,64] (F32) so a mismatch can be located before the decoder.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import torch
from PIL import Image
from safetensors.torch import save_file

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import pipeline  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=pathlib.Path, required=True)
    parser.add_argument("--prompt", default="")
    parser.add_argument("--content", type=pathlib.Path)
    parser.add_argument("--style", type=pathlib.Path, action="append", default=[])
    parser.add_argument("--seed", type=int)
    parser.add_argument("--width", type=int)
    parser.add_argument("--height", type=int)
    parser.add_argument("--num-steps", type=int)
    parser.add_argument("--guidance", type=float)
    parser.add_argument("--content-ref", type=int)
    parser.add_argument("--pe", choices=["d", "h", "w", "o"], default="d")
    parser.add_argument("--out", type=pathlib.Path, required=True)
    args = parser.parse_args()

    defaults = json.loads((args.model_dir / "uso-defaults.json").read_text())
    settings = {
        "prompt": args.prompt, "content": str(args.content) if args.content else None,
        "styles": [str(s) for s in args.style], "seed": args.seed if args.seed is not None else defaults.get("seed", 3407),
        "width": args.width or defaults["width"], "height": args.height or defaults["height"],
        "num_steps": args.num_steps or defaults["num_steps"],
        "guidance": args.guidance if args.guidance is not None else defaults["guidance"],
        "content_ref": args.content_ref or defaults["content_ref"], "pe": args.pe, "dtype": "f32",
        "content_latent": "posterior mean",
    }
    torch.set_grad_enabled(False)
    models = pipeline.load_model_dir(args.model_dir)
    tokenizers = pipeline.Tokenizers(args.model_dir)
    content = Image.open(args.content).convert("RGB") if args.content else None
    styles = tuple(Image.open(s).convert("RGB") for s in args.style)
    final_tokens = {}
    image = pipeline.generate(models, tokenizers, args.prompt, content, styles, settings["width"], settings["height"],
                              settings["num_steps"], settings["guidance"], settings["seed"], settings["content_ref"],
                              args.pe, latent_sink=final_tokens)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out)
    save_file({"tokens": final_tokens["tokens"].contiguous()}, str(args.out.with_suffix(".latent.safetensors")))
    args.out.with_suffix(".json").write_text(json.dumps(settings, indent=2) + "\n")
    print(f"wrote {args.out} ({image.width}x{image.height})")


if __name__ == "__main__":
    main()
