"""uso-mini: the USO model family (FLUX DiT + USO LoRA, style projector, FLUX VAE, T5 / CLIP / SigLIP
from transformers) at a tiny size, with module paths equal to the real checkpoints' key names, so an
export is a plain `save_file(module.state_dict())`.

Written from the facts in shared/spec/uso-architecture.md (§3 DiT, §4 USO extensions, §5 text
encoders, §6 VAE); no reference code is copied. Everything here runs in float32 on the CPU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, asdict

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (CLIPTextConfig, CLIPTextModel, SiglipVisionConfig, SiglipVisionModel,
                          T5Config, T5EncoderModel)


# ---------------------------------------------------------------------------------------------
# Sizes


@dataclass
class MiniConfig:
    # DiT (spec §3.1 at small size)
    latent_channels: int = 16
    hidden: int = 128
    heads: int = 2
    double_blocks: int = 3
    single_blocks: int = 3
    mlp_ratio: float = 4.0
    timestep_dim: int = 256
    lora_rank: int = 16
    # text encoders
    t5_width: int = 64
    clip_width: int = 64
    # SigLIP tower: 27 layers so the hidden-state indices -20/-11/-2 exist as in so400m
    siglip_width: int = 32
    siglip_layers: int = 27
    siglip_heads: int = 2
    siglip_mlp: int = 64
    siglip_image: int = 384
    siglip_patch: int = 14
    # 16 tokens per branch, not so400m's 64: the style modes' DiT steps then cost about what the subject
    # mode's do (48 style tokens beside 128 image and content tokens, instead of 192)
    style_tokens_per_branch: int = 16
    # VAE (spec §6 at small size). GroupNorm has 32 groups; with fewer than 2 channels a group, a
    # norm that no residual bypasses (the encoder's and decoder's norm_out) erases flat colours (at 32
    # channels it is instance norm: a background comes out as one learnt colour whatever its own).
    # Level 0 runs at full resolution and holds most of the cost, so it is the narrow one: 64 channels
    # there (2 a group, enough with AutoEncoder.initialise's offset channel), 128 below. The models
    # shipped up to r15 used 128 at every level (5.8 M parameters, a training step 1.7x as long).
    vae_ch: int = 64
    vae_ch_mult: list = field(default_factory=lambda: [1, 2, 2, 2])
    vae_res_blocks: int = 1
    vae_scale: float = 0.3611
    vae_shift: float = 0.1159

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def rope_axes(self) -> list[int]:
        """The DiT port's rule (FluxConfig.ropeAxes): 128 -> [16, 56, 56], 64 -> [8, 28, 28]."""
        d = self.head_dim
        index = max(2, 2 * ((d + 8) // 16))
        rest = d - index
        rows = 2 * (rest // 4)
        return [index, rows, rest - rows]

    def to_json(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# DiT building blocks (spec §3.3)


def timestep_embedding(t: torch.Tensor, dim: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    """[B] -> [B, dim]: [cos | sin] of 1000·t times exp(-ln(max_period)·k/half)."""
    t = 1000.0 * t
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1).to(t.dtype)


def rope_tables(ids: torch.Tensor, axes: list[int], theta: float = 10000.0) -> torch.Tensor:
    """ids [B, N, 3] -> rotation matrices [B, 1, N, headDim/2, 2, 2] (float32), axis by axis."""
    mats = []
    for axis, dim in enumerate(axes):
        omega = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
        angle = ids[..., axis].to(torch.float64)[..., None] * omega          # [B, N, dim/2]
        cos, sin = torch.cos(angle), torch.sin(angle)
        mats.append(torch.stack([cos, -sin, sin, cos], dim=-1).reshape(*angle.shape, 2, 2))
    return torch.cat(mats, dim=-3).float()[:, None]


def apply_rope(x: torch.Tensor, pe: torch.Tensor) -> torch.Tensor:
    """x [B, H, N, D] rotated in adjacent pairs (x_2m, x_2m+1)."""
    pairs = x.float().reshape(*x.shape[:-1], -1, 1, 2)
    out = pe[..., 0] * pairs[..., 0] + pe[..., 1] * pairs[..., 1]
    return out.reshape(*x.shape).type_as(x)


class MLPEmbedder(nn.Module):
    def __init__(self, in_dim: int, hidden: int):
        super().__init__()
        self.in_layer = nn.Linear(in_dim, hidden)
        self.out_layer = nn.Linear(hidden, hidden)

    def forward(self, x):
        return self.out_layer(F.silu(self.in_layer(x)))


class RMSNorm(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6) * self.scale.float()).type_as(x)


class QKNorm(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.query_norm = RMSNorm(dim)
        self.key_norm = RMSNorm(dim)

    def forward(self, q, k, v):
        return self.query_norm(q).to(v), self.key_norm(k).to(v)


class Modulation(nn.Module):
    def __init__(self, dim: int, chunks: int):
        super().__init__()
        self.chunks = chunks
        self.lin = nn.Linear(dim, chunks * dim)

    def forward(self, vec):
        return self.lin(F.silu(vec))[:, None].chunk(self.chunks, dim=-1)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.norm = QKNorm(dim // heads)
        self.proj = nn.Linear(dim, dim)


class LoRALinear(nn.Module):
    """y = up(down(x)), scale 1, no bias (spec §4.1)."""

    def __init__(self, in_dim: int, out_dim: int, rank: int):
        super().__init__()
        self.down = nn.Linear(in_dim, rank, bias=False)
        self.up = nn.Linear(rank, out_dim, bias=False)
        nn.init.normal_(self.down.weight, std=1.0 / rank)
        nn.init.normal_(self.up.weight, std=1e-3)   # near zero: the LoRA starts as (almost) the identity edit

    def forward(self, x):
        return self.up(self.down(x))


class DoubleLoRA(nn.Module):
    def __init__(self, dim: int, rank: int):
        super().__init__()
        self.qkv_lora1 = LoRALinear(dim, 3 * dim, rank)
        self.proj_lora1 = LoRALinear(dim, dim, rank)
        self.qkv_lora2 = LoRALinear(dim, 3 * dim, rank)
        self.proj_lora2 = LoRALinear(dim, dim, rank)


class SingleLoRA(nn.Module):
    def __init__(self, dim: int, mlp: int, rank: int):
        super().__init__()
        self.qkv_lora = LoRALinear(dim, 3 * dim, rank)
        self.proj_lora = LoRALinear(dim + mlp, dim, rank)


def layer_norm(x):
    return F.layer_norm(x, x.shape[-1:], eps=1e-6)


def split_heads(qkv, heads):
    """[B, L, 3·H·D] -> q, k, v each [B, H, L, D] (element [s, h, d] at s·H·D + h·D + d)."""
    b, l, _ = qkv.shape
    q, k, v = qkv.reshape(b, l, 3, heads, -1).permute(2, 0, 3, 1, 4)
    return q, k, v


def attention(q, k, v, pe, key_bias=None):
    """key_bias [B,1,1,N] (training only): log-multiplicities of keys that stand for several equal ones."""
    q, k = apply_rope(q, pe), apply_rope(k, pe)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_bias)
    b, h, l, d = out.shape
    return out.permute(0, 2, 1, 3).reshape(b, l, h * d)


class DoubleStreamBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int, rank: int):
        super().__init__()
        self.heads = heads
        for stream in ("img", "txt"):
            setattr(self, f"{stream}_mod", Modulation(dim, 6))
            setattr(self, f"{stream}_attn", SelfAttention(dim, heads))
            setattr(self, f"{stream}_mlp", nn.Sequential(nn.Linear(dim, mlp), nn.GELU(approximate="tanh"), nn.Linear(mlp, dim)))
        self.processor = DoubleLoRA(dim, rank)

    def forward(self, img, txt, vec, pe, use_lora: bool, key_bias=None):
        i_sh1, i_sc1, i_g1, i_sh2, i_sc2, i_g2 = self.img_mod(vec)
        t_sh1, t_sc1, t_g1, t_sh2, t_sc2, t_g2 = self.txt_mod(vec)
        lora = self.processor
        xi = (1 + i_sc1) * layer_norm(img) + i_sh1
        qkv_i = self.img_attn.qkv(xi) + (lora.qkv_lora1(xi) if use_lora else 0)
        q_i, k_i, v_i = split_heads(qkv_i, self.heads)
        q_i, k_i = self.img_attn.norm(q_i, k_i, v_i)
        xt = (1 + t_sc1) * layer_norm(txt) + t_sh1
        qkv_t = self.txt_attn.qkv(xt) + (lora.qkv_lora2(xt) if use_lora else 0)
        q_t, k_t, v_t = split_heads(qkv_t, self.heads)
        q_t, k_t = self.txt_attn.norm(q_t, k_t, v_t)
        a = attention(torch.cat([q_t, q_i], 2), torch.cat([k_t, k_i], 2), torch.cat([v_t, v_i], 2), pe, key_bias)
        a_t, a_i = a[:, :txt.shape[1]], a[:, txt.shape[1]:]
        img = img + i_g1 * (self.img_attn.proj(a_i) + (lora.proj_lora1(a_i) if use_lora else 0))
        img = img + i_g2 * self.img_mlp((1 + i_sc2) * layer_norm(img) + i_sh2)
        txt = txt + t_g1 * (self.txt_attn.proj(a_t) + (lora.proj_lora2(a_t) if use_lora else 0))
        txt = txt + t_g2 * self.txt_mlp((1 + t_sc2) * layer_norm(txt) + t_sh2)
        return img, txt


class SingleStreamBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int, rank: int):
        super().__init__()
        self.heads, self.dim = heads, dim
        self.linear1 = nn.Linear(dim, 3 * dim + mlp)
        self.linear2 = nn.Linear(dim + mlp, dim)
        self.norm = QKNorm(dim // heads)
        self.modulation = Modulation(dim, 3)
        self.processor = SingleLoRA(dim, mlp, rank)

    def forward(self, x, vec, pe, use_lora: bool, key_bias=None):
        shift, scale, gate = self.modulation(vec)
        xm = (1 + scale) * layer_norm(x) + shift
        h = self.linear1(xm)
        qkv, mlp = h[..., :3 * self.dim], h[..., 3 * self.dim:]
        if use_lora:
            qkv = qkv + self.processor.qkv_lora(xm)
        q, k, v = split_heads(qkv, self.heads)
        q, k = self.norm(q, k, v)
        c = torch.cat([attention(q, k, v, pe, key_bias), F.gelu(mlp, approximate="tanh")], -1)
        out = self.linear2(c) + (self.processor.proj_lora(c) if use_lora else 0)
        return x + gate * out


class LastLayer(nn.Module):
    def __init__(self, dim: int, out: int):
        super().__init__()
        self.linear = nn.Linear(dim, out)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x, vec):
        shift, scale = self.adaLN_modulation(vec)[:, None].chunk(2, dim=-1)
        return self.linear((1 + scale) * layer_norm(x) + shift)


class Flux(nn.Module):
    """The FLUX DiT with the USO forward (spec §3.2): style tokens prepended to txt after txt_in,
    content-reference tokens appended after the image tokens through img_in, output sliced."""

    def __init__(self, cfg: MiniConfig):
        super().__init__()
        self.cfg = cfg
        dim, c = cfg.hidden, cfg.latent_channels * 4
        mlp = int(dim * cfg.mlp_ratio)
        self.img_in = nn.Linear(c, dim)
        self.time_in = MLPEmbedder(cfg.timestep_dim, dim)
        self.vector_in = MLPEmbedder(cfg.clip_width, dim)
        self.guidance_in = MLPEmbedder(cfg.timestep_dim, dim)
        self.txt_in = nn.Linear(cfg.t5_width, dim)
        self.double_blocks = nn.ModuleList(DoubleStreamBlock(dim, cfg.heads, mlp, cfg.lora_rank) for _ in range(cfg.double_blocks))
        self.single_blocks = nn.ModuleList(SingleStreamBlock(dim, cfg.heads, mlp, cfg.lora_rank) for _ in range(cfg.single_blocks))
        self.final_layer = LastLayer(dim, c)

    def forward(self, img, img_ids, txt, txt_ids, timesteps, y, guidance, refs=(), ref_ids=(), style=None, use_lora=True,
                txt_key_bias=None):
        """img [B,Ni,64], txt [B,Lt,t5], y [B,clip], timesteps/guidance [B], refs: list of [B,Nr,64],
        style: [B,Ls,hidden] projector tokens or None. Returns the velocity [B,Ni,64].
        txt_key_bias [B,Lt] (training only, see compact_text): additive attention bias of the T5 keys."""
        img = self.img_in(img)
        vec = self.time_in(timestep_embedding(timesteps, self.cfg.timestep_dim))
        vec = vec + self.guidance_in(timestep_embedding(guidance, self.cfg.timestep_dim))
        vec = vec + self.vector_in(y)
        txt = self.txt_in(txt)
        if style is not None:
            txt = torch.cat([style, txt], 1)
            txt_ids = torch.cat([torch.zeros(txt_ids.shape[0], style.shape[1], 3, dtype=txt_ids.dtype), txt_ids], 1)
        ids = torch.cat([txt_ids, img_ids], 1)
        image_tokens = img.shape[1]
        for ref, rid in zip(refs, ref_ids):
            img = torch.cat([img, self.img_in(ref)], 1)
            ids = torch.cat([ids, rid], 1)
        pe = rope_tables(ids, self.cfg.rope_axes)
        bias = None
        if txt_key_bias is not None:
            b = txt_key_bias.shape[0]
            bias = torch.cat([torch.zeros(b, txt.shape[1] - txt_key_bias.shape[1]), txt_key_bias,
                              torch.zeros(b, img.shape[1])], 1)[:, None, None]
        for block in self.double_blocks:
            img, txt = block(img, txt, vec, pe, use_lora, bias)
        x = torch.cat([txt, img], 1)
        for block in self.single_blocks:
            x = block(x, vec, pe, use_lora, bias)
        x = x[:, txt.shape[1]:][:, :image_tokens]
        return self.final_layer(x, vec)

    def base_state_dict(self):
        return {k: v for k, v in self.state_dict().items() if ".processor." not in k}

    def lora_state_dict(self):
        return {k: v for k, v in self.state_dict().items() if ".processor." in k}

    def lora_parameters(self):
        return [p for n, p in self.named_parameters() if ".processor." in n]

    def base_parameters(self):
        return [p for n, p in self.named_parameters() if ".processor." not in n]


# ---------------------------------------------------------------------------------------------
# Style projector (spec §4.2): module `feature_embedder`


class SigLIPMultiFeatProjector(nn.Module):
    BRANCHES = ("high", "mid", "low")
    LAYER_INDEX = {"high": -2, "mid": -11, "low": -20}

    def __init__(self, siglip_tokens: int, style_tokens: int, siglip_width: int, hidden: int):
        super().__init__()
        for b in self.BRANCHES:
            setattr(self, f"{b}_embedding_linear", nn.Sequential(nn.Linear(siglip_tokens, style_tokens), nn.SiLU()))
            setattr(self, f"{b}_layer_norm", nn.LayerNorm(siglip_width, eps=1e-5))
            setattr(self, f"{b}_projection", nn.Linear(siglip_width, hidden))

    def forward(self, hidden_states):
        """hidden_states: SigLIP's tuple (index 0 = embeddings) -> [B, 3·style_tokens, hidden]."""
        out = []
        for b in self.BRANCHES:
            h = hidden_states[self.LAYER_INDEX[b]]                     # [B, 729, width]
            e = getattr(self, f"{b}_embedding_linear")(h.transpose(1, 2)).transpose(1, 2)
            out.append(getattr(self, f"{b}_projection")(getattr(self, f"{b}_layer_norm")(e)))
        return torch.cat(out, 1)


class Projector(nn.Module):
    """Holds the projector under the checkpoint's prefix `feature_embedder.`."""

    def __init__(self, cfg: MiniConfig):
        super().__init__()
        tokens = (cfg.siglip_image // cfg.siglip_patch) ** 2
        self.feature_embedder = SigLIPMultiFeatProjector(tokens, cfg.style_tokens_per_branch, cfg.siglip_width, cfg.hidden)

    def forward(self, hidden_states):
        return self.feature_embedder(hidden_states)


# ---------------------------------------------------------------------------------------------
# FLUX autoencoder (spec §6), BFL key layout


def group_norm(ch):
    return nn.GroupNorm(32, ch, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1, self.conv1 = group_norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = group_norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        skip = self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x
        return skip + h


class AttnBlock(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.norm = group_norm(ch)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(ch, ch, 1) for _ in range(4))

    def forward(self, x):
        b, c, h, w = x.shape
        n = self.norm(x)
        q, k, v = (m(n).reshape(b, 1, c, h * w).transpose(2, 3) for m in (self.q, self.k, self.v))
        a = F.scaled_dot_product_attention(q, k, v).transpose(2, 3).reshape(b, c, h, w)
        return x + self.proj_out(a)


class Downsample(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Mid(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.block_1, self.attn_1, self.block_2 = ResnetBlock(ch, ch), AttnBlock(ch), ResnetBlock(ch, ch)

    def forward(self, x):
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder(nn.Module):
    def __init__(self, cfg: MiniConfig):
        super().__init__()
        ch, mult = cfg.vae_ch, cfg.vae_ch_mult
        self.conv_in = nn.Conv2d(3, ch, 3, padding=1)
        self.down = nn.ModuleList()
        cin = ch
        for level, m in enumerate(mult):
            stage = nn.Module()
            stage.block = nn.ModuleList()
            for _ in range(cfg.vae_res_blocks):
                stage.block.append(ResnetBlock(cin, ch * m))
                cin = ch * m
            if level != len(mult) - 1:
                stage.downsample = Downsample(cin)
            self.down.append(stage)
        self.mid = Mid(cin)
        self.norm_out = group_norm(cin)
        self.conv_out = nn.Conv2d(cin, 2 * cfg.latent_channels, 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for stage in self.down:
            for block in stage.block:
                h = block(h)
            if hasattr(stage, "downsample"):
                h = stage.downsample(h)
        return self.conv_out(F.silu(self.norm_out(self.mid(h))))


class Decoder(nn.Module):
    def __init__(self, cfg: MiniConfig):
        super().__init__()
        ch, mult = cfg.vae_ch, cfg.vae_ch_mult
        cin = ch * mult[-1]
        self.conv_in = nn.Conv2d(cfg.latent_channels, cin, 3, padding=1)
        self.mid = Mid(cin)
        stages = []
        for level in reversed(range(len(mult))):
            stage = nn.Module()
            stage.block = nn.ModuleList()
            for _ in range(cfg.vae_res_blocks + 1):
                stage.block.append(ResnetBlock(cin, ch * mult[level]))
                cin = ch * mult[level]
            if level != 0:
                stage.upsample = Upsample(cin)
            stages.insert(0, stage)
        self.up = nn.ModuleList(stages)
        self.norm_out = group_norm(cin)
        self.conv_out = nn.Conv2d(cin, 3, 3, padding=1)

    def forward(self, z):
        h = self.mid(self.conv_in(z))
        for stage in reversed(self.up):
            for block in stage.block:
                h = block(h)
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class AutoEncoder(nn.Module):
    def __init__(self, cfg: MiniConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.initialise()

    @torch.no_grad()
    def initialise(self, offset: float = 3.0):
        """An initialisation that trains in minutes. (1) Every residual branch starts as the identity
        (last conv of each ResnetBlock and the attention output zeroed, as in Fixup/SkipInit), and the
        convolutions on the main path are scaled to keep unit variance on a probe batch, so the
        stream stays near unit size (default init let it grow to ~150 by the mid block). (2) The two
        norms no residual path bypasses (each norm_out, 2 or 4 channels per group) would keep only the
        direction of a flat region's values, erasing a background's colour (measured: red, green and
        blue backgrounds decoded grey). Two channels of every group (one, if a group has only two) get
        constant values ±offset (the bias of the last residual conv, uniform up to the borders) so the
        group's mean and spread are nearly constant and the norm is close to linear: colour passes from
        the first step."""
        for module in self.modules():
            if isinstance(module, ResnetBlock):
                module.conv2.weight.zero_()
                module.conv2.bias.zero_()
            elif isinstance(module, AttnBlock):
                module.proj_out.weight.zero_()
                module.proj_out.bias.zero_()
        generator = torch.Generator().manual_seed(0)
        probe = torch.rand(4, 3, 64, 64, generator=generator) * 2 - 1
        for path, x in ((self.encoder, probe), (self.decoder, None)):
            convs = [m for m in path.modules() if isinstance(m, nn.Conv2d) and m.weight.abs().sum() > 0]
            for conv in convs:
                if conv is path.conv_out:
                    continue
                outputs = []
                handle = conv.register_forward_hook(lambda _m, _i, out: outputs.append(out))
                if path is self.encoder:
                    path(probe)
                else:
                    path(torch.randn(4, self.cfg.latent_channels, 8, 8, generator=generator))
                handle.remove()
                scale = 1 / outputs[0].std().clamp_min(1e-6)
                conv.weight.mul_(scale)
                conv.bias.mul_(scale)
        for block in (self.encoder.mid.block_2, self.decoder.up[0].block[-1]):
            bias = block.conv2.bias.view(32, -1)
            if bias.shape[1] >= 4:
                bias[:, -2], bias[:, -1] = offset, -offset
            elif bias.shape[1] >= 2:     # two channels a group: one constant channel does the same job
                bias[:, -1] = offset      # (one channel a group leaves nothing to offset)

    def moments(self, x):
        """x [B,3,H,W] in [-1,1] -> posterior mean, logvar (unscaled latent space)."""
        return self.encoder(x).chunk(2, dim=1)

    def encode(self, x):
        """Posterior MEAN, scaled as the pipeline feeds the DiT."""
        mean, _ = self.moments(x)
        return self.cfg.vae_scale * (mean - self.cfg.vae_shift)

    def decode(self, z):
        return self.decoder(z / self.cfg.vae_scale + self.cfg.vae_shift)


# ---------------------------------------------------------------------------------------------
# Hugging Face towers


def t5_config(cfg: MiniConfig) -> T5Config:
    return T5Config(vocab_size=32128, d_model=cfg.t5_width, d_kv=32, d_ff=2 * cfg.t5_width, num_layers=2,
                    num_decoder_layers=2, num_heads=2, relative_attention_num_buckets=32,
                    relative_attention_max_distance=128, dropout_rate=0.0, layer_norm_epsilon=1e-6,
                    feed_forward_proj="gated-gelu", tie_word_embeddings=False, is_encoder_decoder=True,
                    pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, architectures=["T5EncoderModel"])


def clip_config(cfg: MiniConfig) -> CLIPTextConfig:
    return CLIPTextConfig(vocab_size=49408, hidden_size=cfg.clip_width, intermediate_size=4 * cfg.clip_width,
                          num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=77,
                          hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=cfg.clip_width,
                          bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
                          architectures=["CLIPTextModel"])


def siglip_config(cfg: MiniConfig) -> SiglipVisionConfig:
    return SiglipVisionConfig(hidden_size=cfg.siglip_width, intermediate_size=cfg.siglip_mlp,
                              num_hidden_layers=cfg.siglip_layers, num_attention_heads=cfg.siglip_heads,
                              num_channels=3, image_size=cfg.siglip_image, patch_size=cfg.siglip_patch,
                              hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, attention_dropout=0.0,
                              architectures=["SiglipVisionModel"])


class USOMini(nn.Module):
    """All parts of a model set, built from a seed."""

    def __init__(self, cfg: MiniConfig | None = None, seed: int = 0):
        super().__init__()
        self.cfg = cfg = cfg or MiniConfig()
        torch.manual_seed(seed)
        self.dit = Flux(cfg)
        self.projector = Projector(cfg)
        self.vae = AutoEncoder(cfg)
        self.t5 = T5EncoderModel(t5_config(cfg))
        self.clip = CLIPTextModel(clip_config(cfg))
        self.siglip = SiglipVisionModel(siglip_config(cfg))
        # The DiT's modulations are the identity at start, as adaLN-zero-style training prefers.
        for module in self.dit.modules():
            if isinstance(module, Modulation):
                nn.init.normal_(module.lin.weight, std=0.02)
                nn.init.zeros_(module.lin.bias)
        # No relative position bias in our T5: every padding position then has the same output through
        # T5 and through the DiT's text stream (text ids are all 0), which compact_text exploits.
        nn.init.zeros_(self.t5.encoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight)
        for m in (self.t5, self.clip, self.siglip):
            m.eval()

    # -- conditioning ------------------------------------------------------------------------

    def encode_text(self, t5_ids: torch.Tensor, clip_ids: torch.Tensor):
        """t5_ids [B,512], clip_ids [B,77] -> txt [B,512,t5], pooled y [B,clip] (no padding masks, §5)."""
        txt = self.t5(input_ids=t5_ids).last_hidden_state
        y = self.clip(input_ids=clip_ids).pooler_output
        return txt, y

    def compact_text(self, t5_ids: torch.Tensor, pad_id: int = 0):
        """Exact short form of T5's output for one padded prompt [512]: the real tokens (up to </s>) and
        ONE padding token standing for all k paddings, with key bias [0…0, ln k]. Valid because this
        T5 has no position bias, so equal inputs give equal outputs, and k equal keys/values weigh
        like one key with ln k added to its logit. Returns txt [n+1, width], key bias [n+1]."""
        n = int((t5_ids != pad_id).sum())
        pads = t5_ids.numel() - n
        ids = torch.cat([t5_ids[:n], torch.tensor([pad_id])])
        bias = torch.zeros(n + 1)
        bias[n] = math.log(pads) if pads > 0 else -1e9
        enc = self.t5.encoder
        h = enc.embed_tokens(ids)[None]
        for block in enc.block:
            attn = block.layer[0].SelfAttention
            x = block.layer[0].layer_norm(h)
            heads, d = attn.n_heads, attn.key_value_proj_dim
            q, k, v = (m(x).reshape(1, -1, heads, d).transpose(1, 2) for m in (attn.q, attn.k, attn.v))
            scores = (q @ k.transpose(-1, -2) + bias).float().softmax(-1).type_as(q)   # T5: no 1/sqrt(d)
            h = h + attn.o((scores @ v).transpose(1, 2).reshape(1, -1, heads * d))
            h = h + block.layer[1].DenseReluDense(block.layer[1].layer_norm(h))
        return enc.final_layer_norm(h)[0], bias

    def style_tokens(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values [B,3,384,384] -> [B,192,hidden]: SigLIP hidden states before post_layernorm."""
        hidden = self.siglip(pixel_values=pixel_values, output_hidden_states=True).hidden_states
        return self.projector(hidden)
