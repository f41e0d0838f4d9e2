"""Model and training configuration: small dataclasses saved inside every checkpoint (nanoGPT style),
so a checkpoint always says how to rebuild its model. Torch-free."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

# How a clip of another aspect ratio meets the model's H x W (core/frames.py): "stretch" squeezes it, "pad" letterboxes.
FrameFit = Literal["stretch", "pad"]


@dataclass
class ModelConfig:
    video_input: Literal["frames", "features"] = "frames"
    frames: int = 16  # T: frames per clip, in and out
    height: int = 36  # the paper's frame size is 36 x 64
    width: int = 64
    feature_dim: int = 9216  # features input: VGG fc6 4096 + C3D fc6 4096 + ... as in the paper
    vocab_size: int = 0  # set from the vocabulary
    # At least; training raises it to the corpus's longest caption plus room (model/train.py: model_config_for).
    max_words: int = 35
    embed_dim: int = 256
    hidden: int = 512  # LSTM hidden size of the sentence encoder and both decoders
    x_dim: int = 512  # x_v and x_s
    latent_dim: int = 512  # Nz
    cnn_channels: int = 32  # width of the per-frame CNN (frames input)
    attention_heads: int = 0  # attention-pooled feature vectors per frame beside max and mean (frames input)
    frame_embed: int = 256  # the previous frame's projection fed to the video decoder LSTM
    video_output: bool = True  # False for feature-only corpora: no frames to regenerate
    # How the video decoder's state becomes pixels (model/star.py, VideoDecoder): "linear" (the paper's) or
    # "layers" (a background and a masked object layer drawn by convolutions over coordinate planes) or "sprite"
    # (one object sprite drawn once per clip, moved and scaled per frame along a pose track over a background).
    video_decoder: Literal["linear", "layers", "sprite"] = "linear"
    draw_channels: int = 16  # feature maps of the "layers" and "sprite" decoders
    sprite_size: int = 32  # the "sprite" decoder's sprite side in pixels (RGB + alpha)
    # How a clip of another aspect ratio meets height x width (core/frames.py): "stretch" (models up to quality-v4)
    # or "pad" (letterboxed, shapes kept). Training and serving read it from here, so they always agree.
    frame_fit: FrameFit = "stretch"
    # The sprite decoder keeps a letterboxed first frame's bars black, exactly (model/star.py: picture_mask): without
    # it the quarter-size background cannot place the bars' edges and hedges, darkening every clip's top and bottom.
    exact_bars: bool = False
    # The sprite decoder draws sentence-to-video (no first frame) with its own heads (sprite, track, background from
    # z): sharing them with video-to-video, training kept sentence-to-video at chance on shape (model/star.py).
    sentence_heads: bool = False
    # The sprite decoder's video-to-video frames (model/star.py: first_frame_scene) are drawn over the first frame
    # itself, its objects filled in from their surroundings, rather than over the background the decoder draws from z
    # (a quarter-size field, which missed other software's backgrounds: tan read as grey). The familiarity rebuild
    # keeps the model's own background: it measures what the latent explains.
    first_frame_background: bool = False
    # Sentence-to-video's background (a quarter-size field from z) carries a faint smear of the object along its
    # track, the average a background learns under a moving object; the sprite decoder fills the track's pixels from
    # the rest of its background (model/star.py: clear_track). Video-to-video and the familiarity rebuild as before.
    clear_sentence_track: bool = False
    # The familiarity rebuild (model/star.py: SpriteVideoDecoder.rebuild, the graph the score runs on every cache
    # miss) draws every n-th frame of the clip, ending on the last (rebuilt_frames), and the rebuild-miss signal reads
    # those frames: at 2, 0.79x the rebuild graph's cost and half the signal's (docs/performance.md). Sprite decoders
    # only (others rebuild with their whole decoder, every frame).
    rebuild_stride: int = 1

    @property
    def frame_pixels(self) -> int:
        return self.height * self.width * 3

    @property
    def video_shape(self) -> tuple[int, ...]:
        """One clip as the video encoder reads it: (T, H, W, 3) frames in [0, 1], or (T, D) features."""
        if self.video_input == "frames":
            return (self.frames, self.height, self.width, 3)
        return (self.frames, self.feature_dim)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def rebuilt_frames(frames: int, stride: int) -> slice:
    """The frames of a `frames`-frame clip that a rebuild at `stride` draws (ModelConfig.rebuild_stride): every
    stride-th, ending on the last (the first frame is the rebuild's input; the last lies furthest from it)."""
    if stride < 1 or frames % stride:
        raise ValueError(f"a rebuild stride must divide the clip's {frames} frames, got {stride}")
    return slice(stride - 1, frames, stride)


PRECISIONS = ("fp32", "bf16")  # TrainConfig.precision
LR_SCHEDULES = ("constant", "cosine")  # TrainConfig.lr_schedule
TRAIN_CHOICES = {"precision": PRECISIONS, "lr_schedule": LR_SCHEDULES}  # TrainConfig's fields that name a choice


def check_choice(name: str, value: str) -> None:
    """ValueError naming the choices, for a value of TrainConfig field `name` that is not one of them."""
    if value not in TRAIN_CHOICES[name]:
        raise ValueError(f"{name} {value!r}: one of {', '.join(TRAIN_CHOICES[name])}")


@dataclass
class TrainConfig:
    batch_size: int = 100
    lr: float = 1e-3
    full_steps: int = 1000  # full-model learning (all channels on)
    partial_steps: int = 1000  # partial-model learning (channel dropout), lr / 10
    finetune_steps: int = 0  # optional task fine-tuning (caption), lr / 100
    finetune_video_steps: int = 0  # task fine-tuning of the video decoder alone (reconstruct + sentence-to-video)
    finetune_video_lr_scale: float = 0.1
    # Stop a phase early when its share of the budget is spent. Presets are budgeted in steps, never in time:
    # on a busy machine a time budget trains a fraction of the steps (a demo model trained beside other jobs
    # named the colour of 0 of 8 real clips, against 96% when quiet). `slr train --time-budget` sets it.
    time_budget_s: float | None = None
    grad_clip: float = 35.0
    lambda_video: float = 1.0
    lambda_sentence: float = 1.0
    lambda_kl: float = 0.01
    lambda_align: float = 0.0  # the video's contribution to mu pulled to the caption's (model/losses.py); 0 = the paper
    lambda_foreground: float = 0.0  # foreground-weighted frame error (model/losses.py: foreground_loss); 0 = the paper
    # The sprite decoder's auxiliary terms where the corpus knows the truth (synthetic: the described object's track
    # and shape; model/losses.py: pose_loss, sprite_mask_loss); rows without it are left out, so 0 changes nothing else.
    lambda_pose: float = 0.0
    lambda_sprite_mask: float = 0.0
    # The sprite decoder's anchor (where it finds the first frame's object, whose glimpse colours the rebuilt sprite)
    # against the true first pose (model/losses.py: anchor_loss).
    lambda_anchor: float = 0.0
    # The share of the video decoder's gradient that reaches z and the encoders (1: the paper; 0: the decoder reads
    # z and never writes it, so the latent the captions read is shaped by the sentence side alone).
    video_z_grad: float = 1.0
    kl_ramp_steps: int = 200  # KL weight ramps 0 -> lambda_kl (avoids posterior collapse early)
    seed: int = 0
    partial_lr_scale: float = 0.1  # the paper divides the learning rate by 10 for partial-model learning
    # Partial-model learning's input mix (v+s, v only, s only); the paper's is 0.5 / 0.25 / 0.25.
    partial_mix: tuple[float, float, float] = (0.5, 0.25, 0.25)
    # Share of the sentence decoder's teacher-forced input words replaced by <unk> (Bowman et al., 2016):
    # the decoder can then not predict the next word from the previous ones alone and must read z.
    word_dropout: float = 0.0
    augment_strength: float = 0.0  # real-encoder degradations on the encoder's input frames (0 = off)
    eval_every: int = 0  # validate every N steps (0 = never): val_tasks' figures on val_clips validation clips
    val_tasks: tuple[str, ...] = ("caption",)  # tasks validated (model/evaluate.py: validation_figures)
    val_clips: int = 256  # validation clips per validation (the first of the split)
    # Early stopping of the converging phases (partial-model learning; a baseline's one phase): stop when the
    # validation figure has not improved for `patience` validations (0 = run every step), never before the phase
    # has run min_steps (the figures sit at chance until the decoders read z), and keep the best validation's weights.
    patience: int = 0
    min_steps: int = 0
    threads: int = 0  # torch intra-op threads (0 = torch's default); 1 is far steadier on a shared machine
    # One of PRECISIONS: "bf16" runs the training forward under bfloat16 autocast, the model's 4-D weights
    # channels-last (model/precision.py); weights, optimiser and exported graphs stay float32. On a CPU with
    # avx512_bf16 1.2-1.7x a step, its captions a little worse at equal steps (docs/performance.md).
    precision: str = "fp32"
    # One of LR_SCHEDULES: "cosine" lowers partial-model learning's rate along a half cosine, from its start to
    # model/phases.py's LR_FLOOR of it at the phase's last step; "constant" keeps it (the paper's, every preset's).
    # At half the quality preset's steps the cosine did not keep its captions (docs/model.md).
    lr_schedule: str = "constant"

    def check_choices(self) -> None:
        """ValueError for a field that names no known choice (TRAIN_CHOICES)."""
        for name in TRAIN_CHOICES:
            check_choice(name, getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class Preset:
    model: ModelConfig
    train: TrainConfig
    corpus_clips: int  # synthetic corpus size (all splits)
    aspect_share: float = 0.0  # synthetic clips drawn at other aspect ratios and letterboxed (model/data/synthetic.py)
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PresetSpec:
    """One row of PRESET_TABLE: the fields that differ from ModelConfig's and TrainConfig's defaults."""

    model: dict[str, Any]
    train: dict[str, Any]
    corpus_clips: int
    aspect_share: float = 0.0
    description: str = ""

    def build(self) -> Preset:
        """A fresh Preset (its configs are mutable: every caller gets its own)."""
        return Preset(ModelConfig(**self.model), TrainConfig(**self.train), corpus_clips=self.corpus_clips,
                      aspect_share=self.aspect_share, description=self.description)


# The presets, budgeted in steps. Why each is set as it is, with what each setting measured: docs/model.md
# ("The presets, and why they are set so").
PRESET_TABLE: dict[str, PresetSpec] = {
    # The test session: seconds, not minutes.
    "tiny": PresetSpec(
        model=dict(frames=6, height=12, width=16, embed_dim=16, hidden=32, x_dim=32, latent_dim=16, cnn_channels=8,
                   frame_embed=32, max_words=12, attention_heads=1, frame_fit="pad"),
        train=dict(batch_size=16, lr=3e-3, full_steps=25, partial_steps=15, kl_ramp_steps=10),
        corpus_clips=160, aspect_share=0.25, description="tests only: trains in seconds, learns little"),
    # About 8 minutes on 2 quiet cores: half the paper's frame size, the "layers" video decoder.
    "demo": PresetSpec(
        model=dict(frames=8, height=18, width=32, embed_dim=64, hidden=256, x_dim=256, latent_dim=128,
                   cnn_channels=24, frame_embed=128, max_words=16, video_decoder="layers", frame_fit="pad"),
        train=dict(batch_size=32, lr=1e-3, full_steps=400, partial_steps=3800, kl_ramp_steps=400,
                   partial_lr_scale=1.0, lambda_align=0.1, lambda_foreground=3.0, finetune_video_steps=300),
        corpus_clips=6000, aspect_share=0.25,
        description="demo model: 4,200 steps + 300 of video fine-tuning, about 8 minutes on 2 quiet cores"),
    # The shipped model (quality-v9, models/default/README.md): about 45 minutes on 2 cores, the sprite decoder; the
    # shipped model's own first run kept sentence_heads off (quality-v8) and gained them by `slr refit`.
    "quality": PresetSpec(
        model=dict(frames=8, height=36, width=64, embed_dim=64, hidden=256, x_dim=256, latent_dim=128,
                   cnn_channels=32, frame_embed=128, max_words=16, attention_heads=2, video_decoder="sprite",
                   frame_fit="pad", exact_bars=True, sentence_heads=True),
        train=dict(batch_size=32, lr=1e-3, full_steps=317, partial_steps=8686, kl_ramp_steps=400,
                   partial_lr_scale=1.0, lambda_align=0.1, augment_strength=0.3, eval_every=1000,
                   lambda_foreground=3.0, finetune_video_steps=1000, finetune_video_lr_scale=0.3, lambda_pose=1.0,
                   lambda_sprite_mask=1.0, video_z_grad=0.0),
        corpus_clips=24000, aspect_share=0.25,
        description="quality model: 9,003 steps + 1,000 of video fine-tuning, about 45 minutes on 2 cores"),
    # The paper's sizes: 512 everywhere, 35 words, batch 100.
    "paper": PresetSpec(
        model=dict(frames=16, height=36, width=64, embed_dim=512, hidden=512, x_dim=512, latent_dim=512,
                   cnn_channels=64, frame_embed=512, max_words=35),
        train=dict(batch_size=100, lr=1e-3, full_steps=40000, partial_steps=20000, kl_ramp_steps=4000),
        corpus_clips=40000, description="the paper's sizes (hours on a CPU)"),
}

PRESETS: tuple[str, ...] = tuple(PRESET_TABLE)


def preset(name: str) -> Preset:
    try:
        spec = PRESET_TABLE[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; known: {PRESETS}") from None
    return spec.build()
