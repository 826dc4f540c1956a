"""Trains uso-mini on the procedural world of data.py, in stages (all on the CPU, deterministic by seed,
resumable: rerun the same command and it continues from runs/NAME/state.pt):

  vae     the autoencoder on generated images (random crops if --vae-crop < 128): L1 + MSE reconstruction and a
          small KL of the SCALED latent 0.3611·(z − 0.1159) to N(0, 1), so the real scale/shift
          constants fit our latents; then frozen.
  siglip  stands in for SigLIP's own pretraining (the real tower arrives pretrained): the vision tower
          learns to tell the eight styles apart through a throwaway linear head on its three hidden
          states the projector reads; then frozen. A random tower separates them only ~50% of the time.
  cache   a fixed training set: target and content latents (posterior mean), compact T5 outputs and
          CLIP pooled vectors per prompt, SigLIP hidden states of a pool of style images.
  base    (stage 0) the base DiT and the projector on all modes (text-to-image, subject, style,
          subject+style, layout-preserving), LoRA off.
  align   (stage 1) the projector alone on the style mode: style images -> tokens the DiT follows.
  lora    (stage 2) the USO LoRA and the projector on triplets, modes mixed for disentanglement.

Flow matching as the reference samples: x_t = (1−t)·x0 + t·ε, the DiT predicts ε − x0; t is
uniform (or, with --timesteps logit-normal, shifted like the 128x128 schedule). T5 and CLIP stay frozen
(random); their padding is computed exactly in compact form (model.compact_text).

  python3 tools/uso_mini/train.py --name main --threads 2    # every stage at the defaults: 65 min on 2 idle cores
  nice -n 10 python3 tools/uso_mini/train.py --name smoke --quick     # a few steps of every stage
  python3 tools/uso_mini/export.py --checkpoint tools/uso_mini/runs/main/state.pt
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import data  # noqa: E402
import pipeline  # noqa: E402
from model import MiniConfig, USOMini  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
STAGES = ("vae", "siglip", "cache", "base", "align", "lora")
BASE_LR = 2e-3     # the base stage's peak learning rate unless --base-lr says otherwise (5e-4 up to r17)
MODE_WEIGHTS = {
    "base": {"t2i": 0.25, "subject": 0.25, "subject_style": 0.35, "layout": 0.15},
    "align": {"style": 1.0},
    "lora": {"t2i": 0.1, "subject": 0.25, "style": 0.1, "subject_style": 0.35, "layout": 0.2},
}


def shares(weights: dict) -> str:
    return ",".join(f"{mode}={w:.2f}" for mode, w in weights.items())


def mode_weights(text: str) -> dict:
    weights = {}
    for item in text.split(","):
        mode, _, weight = item.partition("=")
        if mode not in data.MODES:
            raise argparse.ArgumentTypeError(f"unknown mode '{mode}' (modes: {', '.join(data.MODES)})")
        try:
            weights[mode] = float(weight)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{item}' is not MODE=WEIGHT") from None
    total = sum(weights.values())
    if total <= 0 or min(weights.values()) < 0:
        raise argparse.ArgumentTypeError("weights must be non-negative and not all zero")
    return {mode: w / total for mode, w in weights.items()}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="main")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="a few steps per stage (smoke test)")
    p.add_argument("--vae-steps", type=int, default=800)
    p.add_argument("--siglip-steps", type=int, default=300)
    p.add_argument("--samples-per-mode", type=int, default=800)
    p.add_argument("--style-pool", type=int, default=24, help="style images per style")
    p.add_argument("--base-steps", type=int, default=4500)
    p.add_argument("--align-steps", type=int, default=100)
    p.add_argument("--lora-steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=16, help="DiT batch (the base, align and LoRA stages)")
    p.add_argument("--siglip-batch", type=int, default=8)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--vae-batch", type=int, default=8)
    p.add_argument("--vae-lr", type=float, default=5e-4, help="peak learning rate of the VAE stage")
    p.add_argument("--base-lr", type=float, default=BASE_LR, help="peak learning rate of the base DiT stage")
    p.add_argument("--vae-crop", type=int, default=64, help="training crop side (multiple of 8, at most 128)")
    p.add_argument("--threads", type=int, default=1, help="1 is fastest on a busy machine; 2 on an idle one")
    p.add_argument("--reuse-from", metavar="RUN",
                   help="start at the DiT stages with the VAE, SigLIP and cache of an earlier run whose settings for "
                        "those stages are the same (they are deterministic, so this equals running them again)")
    p.add_argument("--continue-from", metavar="RUN|DIR",
                   help="like --reuse-from, but with ALL weights of that run: its DiT stages train on; or of an "
                        "exported model set (a folder with uso-mini.json, e.g. DefaultModel), with --restart-at cache")
    p.add_argument("--restart-at", choices=STAGES, default="base",
                   help="with --continue-from: run the stages from this one on again, starting from that run's weights "
                        "(the cache is rebuilt when this stage comes before it)")
    p.add_argument("--base-modes", type=mode_weights, default=MODE_WEIGHTS["base"], metavar="MODE=W,...",
                   help="how often each mode is drawn in the base stage, e.g. layout=0.4,subject=0.2,... "
                        "(normalised; modes: " + ", ".join(data.MODES) + ")")
    p.add_argument("--lora-modes", type=mode_weights, default=MODE_WEIGHTS["lora"], metavar="MODE=W,...",
                   help="the same for the LoRA stage")
    p.add_argument("--subject-weight", type=float, default=8.0,
                   help="loss weight of the latent cells the subject covers (the rest weigh 1): the subject is "
                        "10-30%% of the image, so unweighted its identity hardly moves the loss")
    p.add_argument("--timesteps", choices=("uniform", "logit-normal"), default="uniform",
                   help="training t: uniform, or the logit-normal of SD3/FLUX (shifted as the schedule is)")
    a = p.parse_args()
    if a.quick:
        a.siglip_steps = 2
        a.vae_steps, a.samples_per_mode, a.style_pool = 4, 8, 2
        a.base_steps, a.align_steps, a.lora_steps, a.checkpoint_every = 4, 2, 4, 2
    return a


# ---------------------------------------------------------------------------------------------
# Progress and logging


class Progress:
    def __init__(self, run: pathlib.Path, stage: str, total: int, start: int):
        self.stage, self.total, self.start, self.t0 = stage, total, start, time.time()
        self.log = (run / "loss.tsv").open("a")
        self.ema = None

    def update(self, step: int, loss: float, lr: float):
        self.ema = loss if self.ema is None else 0.95 * self.ema + 0.05 * loss
        done = step + 1 - self.start
        rate = (time.time() - self.t0) / max(done, 1)
        eta = rate * (self.total - step - 1)
        bar = "#" * int(30 * (step + 1) / self.total)
        sys.stderr.write(f"\r{self.stage:6s} [{bar:30s}] {step + 1}/{self.total} loss {self.ema:.4f} "
                         f"{rate:.2f} s/it ETA {eta / 60:.1f} min ")
        self.log.write(f"{self.stage}\t{step}\t{loss:.6f}\t{lr:.3g}\t{time.time():.0f}\n")
        self.log.flush()

    def close(self):
        sys.stderr.write("\n")
        self.log.close()


def lr_at(step: int, total: int, peak: float, warmup: int = 50) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


# ---------------------------------------------------------------------------------------------
# State (resumable)


class Run:
    def __init__(self, args):
        self.args = args
        self.dir = HERE / "runs" / args.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.dir / "state.pt"
        self.stage, self.step, self.optimizer_state = STAGES[0], 0, None
        self.wall, self.origin = {}, None
        if self.state_path.exists():
            state = torch.load(self.state_path, map_location="cpu", weights_only=False)
            self.models = USOMini(MiniConfig(**state["config"]), seed=args.seed)   # the sizes it was made with
            self.models.load_state_dict(state["models"])
            self.stage, self.step, self.optimizer_state = state["stage"], state["step"], state["optimizer"]
            self.wall, self.origin = state.get("wall", {}), state.get("origin")
            print(f"resuming {args.name}: stage {self.stage}, step {self.step}")
        elif args.continue_from and (pathlib.Path(args.continue_from) / "uso-mini.json").exists():
            self.adopt(pathlib.Path(args.continue_from))
        elif args.reuse_from or args.continue_from:
            self.reuse(HERE / "runs" / (args.reuse_from or args.continue_from), everything=bool(args.continue_from))
        else:
            self.models = USOMini(MiniConfig(), seed=args.seed)

    EARLY_SETTINGS = ("seed", "vae_steps", "vae_batch", "vae_crop", "vae_lr", "siglip_steps", "siglip_batch",
                      "samples_per_mode", "style_pool")
    # settings newer than some runs, at the value those runs used (their SigLIP stage took --batch, always 8)
    ADDED_SETTINGS = {"vae_lr": 1e-3, "siglip_batch": 8}

    def reuse(self, other: pathlib.Path, everything: bool):
        """Take the VAE, SigLIP tower and cache of `other` (frozen after their stages), and with `everything`
        its DiT, projector and LoRA too; then go on at --restart-at (only 'base' without `everything`)."""
        restart = STAGES.index(self.args.restart_at)
        if not everything and restart != STAGES.index("base"):
            sys.exit("--restart-at needs --continue-from (--reuse-from takes the finished early stages as they are)")
        keeps_cache = restart > STAGES.index("cache")
        theirs = json.loads((other / "args.json").read_text())
        differing = [k for k in self.EARLY_SETTINGS if theirs.get(k, self.ADDED_SETTINGS.get(k)) != vars(self.args)[k]]
        if keeps_cache and differing:
            sys.exit(f"{other.name}: its {', '.join(differing)} differ from this run's")
        state = torch.load(other / "state.pt", map_location="cpu", weights_only=False)
        reached = STAGES.index(state["stage"]) if state["stage"] in STAGES else len(STAGES)
        if reached < restart:
            sys.exit(f"{other.name} has not finished the stages to take from it (it is at '{state['stage']}')")
        # the sizes of the parts taken (all of them, or the frozen VAE and SigLIP); the rest as configured now
        sizes = {k: v for k, v in state["config"].items() if everything or k.startswith(("vae_", "siglip_"))}
        self.models = USOMini(MiniConfig(**sizes), seed=self.args.seed)
        taken = {k: v for k, v in state["models"].items() if everything or k.startswith(("vae.", "siglip."))}
        self.models.load_state_dict(taken, strict=False)
        self.origin = f"{other.name}, stages from '{STAGES[restart]}' on run again ({state['provenance']})" if everything else None
        (self.dir / "cache.pt").unlink(missing_ok=True)
        if keeps_cache:
            (self.dir / "cache.pt").hardlink_to(other / "cache.pt")
        self.stage = STAGES[restart]
        self.wall = {k: v for k, v in state.get("wall", {}).items() if k in STAGES[:restart]}
        print(f"starting from {'all weights' if everything else 'the vae, siglip and cache stages'} of {other.name}"
              f" at stage {self.stage}")
        self.save()

    def adopt(self, model_dir: pathlib.Path):
        """Every weight of an exported model set (DefaultModel/, BF16 widened to F32), then the stages from
        --restart-at on: training goes on from a shipped model on any machine, without its run folder. An
        export holds no latent cache, so the restart is at 'cache' at the latest."""
        restart = STAGES.index(self.args.restart_at)
        if restart > STAGES.index("cache"):
            sys.exit(f"{model_dir} is an exported model set, which has no latent cache: use --restart-at cache")
        self.models = pipeline.load_model_dir(model_dir)
        readme = (model_dir / "README.md").read_text() if (model_dir / "README.md").exists() else ""
        provenance = next((line[len("Provenance: "):] for line in readme.splitlines() if line.startswith("Provenance: ")), "")
        self.origin = f"the model set in {model_dir} ({provenance})"
        self.stage = STAGES[restart]
        print(f"starting from every weight of {model_dir} at stage {self.stage}")
        self.save()

    def save(self, optimizer=None):
        state = {"config": self.models.cfg.to_json(), "models": self.models.state_dict(), "stage": self.stage,
                 "step": self.step, "optimizer": optimizer.state_dict() if optimizer else None, "wall": self.wall,
                 "provenance": self.provenance(), "origin": self.origin, "settings": None}
        tmp = self.state_path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(self.state_path)

    def provenance(self):
        a = self.args
        return (f"trained by tools/uso_mini/train.py --name {a.name} --seed {a.seed}: VAE {a.vae_steps} steps, "
                f"base DiT {a.base_steps}, projector alignment {a.align_steps}, LoRA {a.lora_steps} steps, batch {a.batch}, "
                f"{a.samples_per_mode} cached samples per mode, {a.timesteps} t, modes base {shares(a.base_modes)} "
                f"LoRA {shares(a.lora_modes)}"
                + (f", subject cells weighted {a.subject_weight:g}" if a.subject_weight != 1 else "")
                + f", base lr {a.base_lr:g}"
                + f"; reached stage '{self.stage}' step "
                f"{self.step}; wall seconds per stage {json.dumps({k: round(v) for k, v in self.wall.items()})}"
                + (f"; continued from {self.origin}" if self.origin else ""))

    def advance(self, stage_seconds: float):
        self.wall[self.stage] = self.wall.get(self.stage, 0) + stage_seconds
        self.stage = STAGES[STAGES.index(self.stage) + 1] if self.stage != STAGES[-1] else "done"
        self.step, self.optimizer_state = 0, None
        self.save()


def optimise(run: Run, stage: str, params, total: int, peak_lr: float, loss_fn):
    """The shared loop: AdamW, warmup + cosine, clipping, periodic checkpoints, deterministic per step."""
    optimizer = torch.optim.AdamW(params, lr=peak_lr, weight_decay=0.0, betas=(0.9, 0.99))
    if run.optimizer_state:
        optimizer.load_state_dict(run.optimizer_state)
    progress = Progress(run.dir, stage, total, run.step)
    t0 = time.time()
    for step in range(run.step, total):
        torch.manual_seed(run.args.seed * 1_000_003 + STAGES.index(stage) * 100_000 + step)
        rng = np.random.default_rng([run.args.seed, STAGES.index(stage), step])
        lr = lr_at(step, total, peak_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = loss_fn(rng)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        progress.update(step, loss.item(), lr)
        run.step = step + 1
        if run.step % run.args.checkpoint_every == 0 and run.step < total:
            run.wall[stage] = run.wall.get(stage, 0) + time.time() - t0
            t0 = time.time()
            run.save(optimizer)
    progress.close()
    run.advance(time.time() - t0)


# ---------------------------------------------------------------------------------------------
# Stage: VAE


def random_training_image(rng: np.random.Generator):
    sample = data.make_sample(int(rng.integers(2**31)), str(rng.choice(data.MODES)))
    return sample.style_image if (sample.style_image is not None and rng.random() < 0.25) else sample.target


def training_crops(run: Run, rng: np.random.Generator) -> torch.Tensor:
    crop, batch = run.args.vae_crop, []
    for _ in range(run.args.vae_batch):
        x = pipeline.to_signed_tensor(random_training_image(rng))
        top, left = (int(v) for v in rng.integers(0, 128 - crop + 1, 2) // 8 * 8)
        batch.append(x[..., top:top + crop, left:left + crop])
    return torch.cat(batch)


def train_vae(run: Run):
    vae, cfg = run.models.vae, run.models.cfg

    def loss_fn(rng):
        x = training_crops(run, rng)
        mean, logvar = vae.moments(x)
        logvar = logvar.clamp(-30, 20)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        recon = vae.decoder(z)
        # KL of the scaled posterior N(s(m − shift), s²σ²) to N(0, 1)
        m = cfg.vae_scale * (mean - cfg.vae_shift)
        lv = logvar + 2 * math.log(cfg.vae_scale)
        kl = 0.5 * (m.pow(2) + lv.exp() - 1 - lv).mean()
        return F.l1_loss(recon, x) + F.mse_loss(recon, x) + 1e-3 * kl

    optimise(run, "vae", list(vae.parameters()), run.args.vae_steps, run.args.vae_lr, loss_fn)


# ---------------------------------------------------------------------------------------------
# Stage: SigLIP


def train_siglip(run: Run):
    models = run.models
    fe = models.projector.feature_embedder
    layers = [fe.LAYER_INDEX[b] for b in fe.BRANCHES]
    head = torch.nn.Linear(len(layers) * models.cfg.siglip_width, len(data.STYLE_NAMES))
    torch.manual_seed(run.args.seed)
    torch.nn.init.zeros_(head.weight)

    def loss_fn(rng):
        styles = rng.integers(0, len(data.STYLE_NAMES), run.args.siglip_batch)
        scenes = [data.abstract_scene(rng) if rng.random() < 0.5 else
                  data.render(data.SUBJECTS[int(rng.integers(len(data.SUBJECTS)))], data.random_layout(rng))
                  for _ in styles]
        images = [data.stylise(scene, data.STYLE_NAMES[s]) for scene, s in zip(scenes, styles)]
        states = models.siglip(pixel_values=torch.cat([pipeline.siglip_pixels(im) for im in images]),
                               output_hidden_states=True).hidden_states
        features = torch.cat([states[i].mean(1) for i in layers], 1)
        return F.cross_entropy(head(features), torch.from_numpy(styles))

    optimise(run, "siglip", list(models.siglip.parameters()) + list(head.parameters()), run.args.siglip_steps,
             1e-3, loss_fn)


# ---------------------------------------------------------------------------------------------
# Stage: cache


def cached_sample_seed(args, mode_index: int, i: int) -> int:
    """The data.make_sample seed of the cache's i-th sample of mode data.MODES[mode_index]."""
    return args.seed * 10_000_000 + mode_index * 1_000_000 + i


@torch.no_grad()   # without it the 4,000 encodes keep their graphs: 24 GB, and the run is killed
def build_cache(run: Run):
    models, args = run.models, run.args
    tokenizers = pipeline.Tokenizers(ROOT / "DefaultModel")
    t0 = time.time()
    prompts, prompt_index = [], {}
    records = {mode: {"target": [], "content": [], "prompt": [], "style": [], "subject": []} for mode in data.MODES}
    total = len(data.MODES) * args.samples_per_mode
    done = 0
    for mode_index, mode in enumerate(data.MODES):
        rec = records[mode]
        for i in range(args.samples_per_mode):
            s = data.make_sample(cached_sample_seed(args, mode_index, i), mode)
            if s.prompt not in prompt_index:
                prompt_index[s.prompt] = len(prompts)
                prompts.append(s.prompt)
            rec["prompt"].append(prompt_index[s.prompt])
            rec["target"].append(pipeline.to_signed_tensor(s.target))
            rec["content"].append(pipeline.to_signed_tensor(s.content) if s.content is not None else None)
            rec["style"].append(data.STYLE_NAMES.index(s.style) if s.style != data.PLAIN else -1)
            rec["subject"].append(s.subject)
            done += 1
            sys.stderr.write(f"\rcache  rendering {done}/{total} ")
    cache = {"modes": {}, "prompts": prompts}
    for mode, rec in records.items():
        targets = torch.cat(rec["target"])
        latents = torch.cat([models.vae.encode(chunk) for chunk in targets.split(64)])
        entry = {"target": latents, "prompt": torch.tensor(rec["prompt"]), "style": torch.tensor(rec["style"]),
                 "subject": torch.tensor(rec["subject"])}
        if rec["content"][0] is not None:
            contents = torch.cat(rec["content"])
            entry["content"] = torch.cat([models.vae.encode(chunk) for chunk in contents.split(64)])
        cache["modes"][mode] = entry
        sys.stderr.write(f"\rcache  encoded {mode} latents, std {latents.std():.3f} mean {latents.mean():.3f}      \n")
    texts, biases, pooled = [], [], []
    for i in range(0, len(prompts), 64):
        t5_ids, clip_ids = tokenizers(prompts[i:i + 64])
        pooled.append(models.clip(input_ids=clip_ids).pooler_output)
        for row in t5_ids:
            txt, bias = models.compact_text(row)
            texts.append(txt)
            biases.append(bias)
    cache["text"], cache["text_bias"], cache["pooled"] = texts, biases, torch.cat(pooled)
    hidden = []
    pool_rng = np.random.default_rng([args.seed, 7])
    for style in data.STYLE_NAMES:
        images = [data.stylise(data.abstract_scene(pool_rng), style) for _ in range(args.style_pool)]
        pixels = torch.cat([pipeline.siglip_pixels(im) for im in images])
        states = models.siglip(pixel_values=pixels, output_hidden_states=True).hidden_states
        idx = models.projector.feature_embedder.LAYER_INDEX
        hidden.append(torch.stack([states[idx[b]] for b in models.projector.feature_embedder.BRANCHES], 1))
        sys.stderr.write(f"\rcache  SigLIP features of style {style}        ")
    cache["style_hidden"] = torch.stack(hidden)      # [styles, pool, 3, 729, width]
    torch.save(cache, run.dir / "cache.pt")
    sys.stderr.write(f"\ncache  {len(prompts)} prompts, {total} samples in {time.time() - t0:.0f} s\n")
    run.advance(time.time() - t0)


# ---------------------------------------------------------------------------------------------
# Stages: DiT


def project_style(models: USOMini, hidden: torch.Tensor) -> torch.Tensor:
    """hidden [B, 3, 729, width] in branch order (high, mid, low) -> style tokens [B, 192, hidden]."""
    fe = models.projector.feature_embedder
    states = {fe.LAYER_INDEX[b]: hidden[:, i] for i, b in enumerate(fe.BRANCHES)}
    return fe(states)


def sample_t(batch: int, kind: str, width: int = 128, height: int = 128) -> torch.Tensor:
    """Uniform t, or logit-normal t shifted as the sampling schedule is at this size. The logit-normal
    hardly visits the high-noise end (t > 0.9 in ~4% of samples, t > 0.98 in 0.03%), where the sampler's
    first steps decide the whole layout: a model this small then draws seed-shaped blurs whatever the
    prompt (measured: x0 estimates at t = 0.98 ignored the prompt's background colour)."""
    if kind == "uniform":
        return torch.rand(batch)
    seq = (width // 8) * (height // 8) // 256
    m = (1.15 - 0.5) / (4096 - 256)
    mu = m * seq + (0.5 - m * 256)
    t = torch.sigmoid(torch.randn(batch))
    return math.exp(mu) / (math.exp(mu) + (1 / t - 1))


def text_batch(cache: dict, prompts: list[int], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The cached compact texts of `prompts`, padded to the longest: [B, L, width] and key biases [B, L]."""
    length = max(cache["text"][p].shape[0] for p in prompts)
    txt = torch.zeros(len(prompts), length, width)
    bias = torch.full((len(prompts), length), -1e9)     # fillers past a short prompt's compact text are masked out
    for row, p in enumerate(prompts):
        n = cache["text"][p].shape[0]
        txt[row, :n], bias[row, :n] = cache["text"][p], cache["text_bias"][p]
    return txt, bias


def flow_loss(run: Run, cache: dict, stage: str, rng: np.random.Generator, use_lora: bool) -> torch.Tensor:
    models, args = run.models, run.args
    weights = {"base": args.base_modes, "align": MODE_WEIGHTS["align"], "lora": args.lora_modes}[stage]
    mode = str(rng.choice(list(weights), p=list(weights.values())))
    entry = cache["modes"][mode]
    idx = torch.from_numpy(rng.integers(0, entry["target"].shape[0], args.batch))
    b = args.batch
    x0 = pipeline.pack(entry["target"][idx])
    noise = torch.randn_like(x0)
    t = sample_t(b, args.timesteps)
    xt = (1 - t)[:, None, None] * x0 + t[:, None, None] * noise
    prompts = entry["prompt"][idx].tolist()
    txt, bias = text_batch(cache, prompts, models.cfg.t5_width)
    length = txt.shape[1]
    y = cache["pooled"][prompts]
    style = None
    if mode in ("style", "subject_style", "layout"):
        pool = cache["style_hidden"]
        picks = torch.from_numpy(rng.integers(0, pool.shape[1], b))
        style = project_style(models, pool[entry["style"][idx], picks])
    refs, ref_ids = [], []
    if "content" in entry:
        refs = [pipeline.pack(entry["content"][idx])]
        ref_ids = [pipeline.reference_ids(16, 16, 16, 16, batch=b)]
    v = models.dit(xt, pipeline.grid_ids(8, 8, batch=b), txt, torch.zeros(b, length, 3), t, y, torch.full((b,), 4.0),
                   refs, ref_ids, style, use_lora=use_lora, txt_key_bias=bias)
    if "mask" not in entry:
        return F.mse_loss(v, noise - x0)
    weight = pipeline.pack((1 + (args.subject_weight - 1) * entry["mask"][idx]).expand_as(entry["target"][idx]))
    return (weight * (v - (noise - x0)) ** 2).sum() / weight.sum()


def add_subject_masks(run: Run, cache: dict):
    """Marks in every cached target the latent cells its subject covers (entry["mask"], [N, 1, H, W]),
    recomputed from the samples' seeds as build_cache drew them."""
    for mode_index, mode in enumerate(data.MODES):
        entry = cache["modes"][mode]
        side = entry["target"].shape[-1]
        masks = np.stack([data.subject_mask(cached_sample_seed(run.args, mode_index, i), mode, side)
                          for i in range(entry["target"].shape[0])])
        entry["mask"] = torch.from_numpy(masks).float()[:, None]


def train_dit(run: Run, stage: str):
    cache = torch.load(run.dir / "cache.pt", map_location="cpu", weights_only=False)
    models, args = run.models, run.args
    if args.subject_weight != 1:
        add_subject_masks(run, cache)
    for p in models.parameters():
        p.requires_grad_(False)
    projector = list(models.projector.parameters())
    if stage == "base":
        params, total, lr, lora = models.dit.base_parameters() + projector, args.base_steps, args.base_lr, False
    elif stage == "align":
        params, total, lr, lora = projector, args.align_steps, 3e-4, False
    else:
        params, total, lr, lora = models.dit.lora_parameters() + projector, args.lora_steps, 3e-4, True
    for p in params:
        p.requires_grad_(True)
    optimise(run, stage, params, total, lr, lambda rng: flow_loss(run, cache, stage, rng, lora))


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    run = Run(args)
    (run.dir / "args.json").write_text(json.dumps(vars(args), indent=2))
    while run.stage != "done":
        print(f"stage {run.stage}")
        if run.stage == "vae":
            train_vae(run)
        elif run.stage == "siglip":
            train_siglip(run)
        elif run.stage == "cache":
            build_cache(run)
        else:
            train_dit(run, run.stage)
    print(f"done: {run.state_path}\n{run.provenance()}")


if __name__ == "__main__":
    main()
