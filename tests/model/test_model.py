"""The star model: channel switches, losses, learning, search, checkpoints, evaluation numbers."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core import channels
from core.config import ModelConfig, TrainConfig, preset
from core.search import beam_search, greedy_search
from core.vocab import BOS_ID, EOS_ID, PAD_ID, Vocab
from model.checkpoint import load_checkpoint, save_checkpoint
from model.data.attributes import attribute_accuracy
from model.data.dataset import BatchStream, decoder_io, tensorize
from model.losses import latent_alignment, sentence_loss, video_loss
from model.metrics import caption_scores, frame_mse
from model.phases import LR_FLOOR, MIX_KEYS, fixed_masks, full_masks, phases_for
from model.precision import check_precision, native_bf16_cpu, precisions_on
from model.probes import probe_accuracy, probe_video
from model.star import Latent, StarModel
from model.train import Trainer, evaluate_loss

TORCH_FREE = ["model", "core.channels", "core.vocab", "core.frames", "core.config", "core.search",
              "model.data", "model.data.corpus", "model.data.synthetic"]


def tiny_model(vocab_size: int = 40, seed: int = 0) -> StarModel:
    torch.manual_seed(seed)
    cfg = ModelConfig.from_dict({**preset("tiny").model.to_dict(), "vocab_size": vocab_size})
    return StarModel(cfg).eval()


def tiny_inputs(cfg: ModelConfig, b: int = 3):
    g = torch.Generator().manual_seed(1)
    video = torch.rand(b, cfg.frames, cfg.height, cfg.width, 3, generator=g)
    tokens = torch.randint(4, cfg.vocab_size, (b, 5), generator=g)
    lengths = torch.tensor([5, 3, 1][:b])
    return video, tokens, lengths


@pytest.mark.parametrize("module", TORCH_FREE)
def test_torch_free_modules_do_not_import_torch(module: str) -> None:
    code = f"import sys, {module}; assert 'torch' not in sys.modules, 'torch imported by {module}'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("config", list(channels.REGISTRY.values()), ids=list(channels.REGISTRY))
def test_every_registered_configuration_encodes(config: channels.ChannelConfig) -> None:
    m = tiny_model()
    video, tokens, lengths = tiny_inputs(m.cfg)
    on_v, on_s = config.mask
    lat = m.encode(video if on_v else None, tokens if on_s else None, lengths if on_s else None)
    assert lat.mu.shape == (3, m.cfg.latent_dim) and torch.isfinite(lat.mu).all() and (lat.sigma > 0).all()
    if "video" in config.outputs:
        assert m.decode_video(lat.mu, video[:, 0] if on_v else None).shape == video.shape
    if "sentence" in config.outputs:
        assert len(m.generate_sentences(lat.mu, beam_size=2, max_len=6)) == 3


def test_inactive_input_contributes_zeros() -> None:
    """Video-only equals both-on with the sentence masked to zero, whatever the sentence says."""
    m = tiny_model()
    video, tokens, lengths = tiny_inputs(m.cfg)
    only_v = m.encode(video=video)
    masked = m.encode(video, tokens, lengths, mask_v=torch.ones(3), mask_s=torch.zeros(3))
    other = m.encode(video, torch.flip(tokens, [0]), lengths, mask_v=torch.ones(3), mask_s=torch.zeros(3))
    torch.testing.assert_close(only_v.mu, masked.mu)
    torch.testing.assert_close(masked.mu, other.mu)
    both = m.encode(video, tokens, lengths)
    assert not torch.allclose(both.mu, only_v.mu)


def test_sentence_off_does_not_run_the_sentence_encoder() -> None:
    m = tiny_model()
    calls = {"s": 0, "v": 0}
    m.sentence_encoder.register_forward_hook(lambda *_: calls.__setitem__("s", calls["s"] + 1))
    m.video_encoder.register_forward_hook(lambda *_: calls.__setitem__("v", calls["v"] + 1))
    video, tokens, lengths = tiny_inputs(m.cfg)
    m.encode(video=video)
    assert calls == {"s": 0, "v": 1}
    m.encode(tokens=tokens, lengths=lengths)
    assert calls == {"s": 1, "v": 1}
    with pytest.raises(ValueError):
        m.encode()


def test_sentence_encoder_reads_the_state_after_the_last_real_word() -> None:
    m = tiny_model()
    _, tokens, _ = tiny_inputs(m.cfg)
    short = m.sentence_encoder(tokens[:1, :3], torch.tensor([3]))
    padded = torch.cat([tokens[:1, :3], torch.zeros(1, 4, dtype=torch.long)], dim=1)
    torch.testing.assert_close(m.sentence_encoder(padded, torch.tensor([3])), short)


@torch.no_grad()
def test_decoders_read_z_at_every_step_even_with_a_saturated_initial_state() -> None:
    """The failure this guards against: with z in the initial state only, tanh(W z + b) saturates while
    the decoder learns the language prior, and every z then gives the same sentence and video."""
    m = tiny_model()
    for init in (m.sentence_decoder.init, m.video_decoder.init):
        init.weight.zero_()
        init.bias.fill_(50.0)  # tanh(...) = 1 whatever z is
    z1, z2 = torch.randn(2, m.cfg.latent_dim), torch.randn(2, m.cfg.latent_dim)
    torch.testing.assert_close(m.sentence_decoder.init_state(z1)[:2], m.sentence_decoder.init_state(z2)[:2])
    words = torch.tensor([[1, 5, 6, 7], [1, 8, 9, 10]])
    assert (m.sentence_decoder(z1, words) - m.sentence_decoder(z2, words)).abs().amax(dim=-1).min() > 1e-4
    first = torch.zeros(2, m.cfg.height, m.cfg.width, 3)
    assert (m.decode_video(z1, first) - m.decode_video(z2, first)).abs().amax() > 1e-4


def test_loss_terms_on_hand_checked_values() -> None:
    pred, true = torch.zeros(2, 3, 2, 2, 3), torch.zeros(2, 3, 2, 2, 3)
    true[0, 0, 0, 0, 0] = 3.0
    true[0, 0, 0, 0, 1] = 4.0  # one frame at distance 5, five frames at 0
    assert video_loss(pred, true).item() == pytest.approx(5.0 / 6)
    logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]],
                                     [[0.2, 0.2, 0.6], [0.3, 0.3, 0.4]]]))
    target = torch.tensor([[1, 2], [2, PAD_ID]])  # the padded position is ignored
    # summed over each sentence's words, averaged over the two sentences
    expected = (-np.log(0.25) - np.log(0.8) - np.log(0.6)) / 2
    assert sentence_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)
    assert Latent(torch.zeros(4, 8), torch.ones(4, 8)).kl().item() == pytest.approx(0.0)
    kl = Latent(torch.ones(1, 2), torch.ones(1, 2)).kl().item()
    assert kl == pytest.approx(0.5 * 2)  # 0.5 * sum(mu^2) with unit variance


def test_latent_alignment_pulls_the_video_contribution_to_the_caption_one() -> None:
    m = tiny_model().train()
    video, tokens, lengths = tiny_inputs(m.cfg)
    x_v, x_s = m.features(video, tokens, lengths)
    w_v, w_s = m.to_mu.weight.split(m.cfg.x_dim, dim=1)
    expected = ((x_v @ w_v.T - x_s @ w_s.T) ** 2).sum(-1).mean()
    align = latent_alignment(m, x_v, x_s)
    assert align.item() == pytest.approx(expected.item(), rel=1e-5) and align.item() > 0
    align.backward()
    grad = lambda mod: sum(float(p.grad.abs().sum()) for p in mod.parameters() if p.grad is not None)  # noqa: E731
    # The caption side is the target: it is held fixed; the bias moves both sides alike and gets nothing.
    assert grad(m.video_encoder) > 0 and grad(m.sentence_encoder) == 0
    assert m.to_mu.bias.grad is None
    assert latent_alignment(m, x_s.detach() * 0, x_s.detach() * 0).item() == 0


def test_decoder_io_brackets_words_with_bos_and_eos() -> None:
    tin, tout = decoder_io(torch.tensor([[7, 8, 9], [5, 0, 0]]), torch.tensor([3, 1]))
    assert tin.tolist() == [[BOS_ID, 7, 8, 9], [BOS_ID, 5, 0, 0]]
    assert tout.tolist() == [[7, 8, 9, EOS_ID], [5, EOS_ID, 0, 0]]


def test_partial_model_masks_follow_the_paper_probabilities() -> None:
    """The masks the partial phase that training builds really draws (TrainConfig's default mix: the paper's)."""
    assert TrainConfig().partial_mix == tuple(channels.PARTIAL_LEARNING_PROBS[k] for k in MIX_KEYS)
    partial = {p.name: p for p in phases_for(TrainConfig())}["partial"]
    v, s = partial.masks(20000, torch.Generator().manual_seed(0))
    assert not ((v == 0) & (s == 0)).any()  # never both inputs off
    both = ((v == 1) & (s == 1)).float().mean().item()
    only_v = ((v == 1) & (s == 0)).float().mean().item()
    assert both == pytest.approx(0.5, abs=0.02) and only_v == pytest.approx(0.25, abs=0.02)
    fv, fs = fixed_masks(channels.get("caption"))(4, torch.Generator())
    assert fv.tolist() == [1.0] * 4 and fs.tolist() == [0.0] * 4
    assert [p.name for p in phases_for(TrainConfig(finetune_steps=5))] == ["full", "partial", "finetune"]


NO_BF16 = pytest.mark.skipif(not native_bf16_cpu(), reason="this CPU has no oneDNN bfloat16 (AVX-512 or AMX): "
                             "bf16 is refused here (test_bf16_is_refused_where_the_cpu_cannot_run_it)")


@pytest.mark.parametrize("precision", ["fp32", pytest.param("bf16", marks=NO_BF16)])
def test_a_few_training_steps_lower_the_loss(precision: str, tiny_corpus, tmp_path: Path) -> None:
    p = preset("tiny")
    vocab = Vocab.build(tiny_corpus.all_captions("train"))
    m = tiny_model(len(vocab))
    data = tensorize(tiny_corpus.splits["train"], vocab, m.cfg)
    tc = TrainConfig.from_dict({**p.train.to_dict(), "lr": 3e-3, "precision": precision})
    before = evaluate_loss(m, data, tc, full_masks)
    trainer = Trainer(m, vocab, tc, tmp_path, progress=False)
    computed: set[torch.dtype] = set()  # what the frame CNN's convolutions compute in
    for conv in (mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)):
        conv.register_forward_hook(lambda _mod, _inp, out: computed.add(out.dtype))
    stream = BatchStream(data, 16, seed=0)
    phase = phases_for(tc)[0]
    for _ in range(30):
        trainer.train_step(stream.next(), phase, torch.Generator().manual_seed(0))
    assert computed == {torch.bfloat16 if precision == "bf16" else torch.float32}
    assert {q.dtype for q in m.parameters()} == {torch.float32}  # the optimiser's weights stay float32
    after = evaluate_loss(m, data, tc, full_masks)
    assert after < 0.93 * before, (before, after)


def test_bf16_is_refused_where_the_cpu_cannot_run_it(monkeypatch: pytest.MonkeyPatch, tiny_corpus, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """An AVX2-only CPU: oneDNN has no bfloat16 LSTM there (the forward would fail mid-run), so bf16 is refused up
    front, by `slr train` with one line and status 2, and by a Trainer; a GPU is not held to the CPU's rule."""
    from cli.main import main

    monkeypatch.setattr("model.precision.native_bf16_cpu", lambda: False)
    with pytest.raises(ValueError, match="precision bf16 needs a CPU with AVX-512 or AMX"):
        check_precision("bf16", torch.device("cpu"))
    check_precision("bf16", torch.device("cuda"))
    check_precision("fp32", torch.device("cpu"))
    assert precisions_on(torch.device("cpu")) == ("fp32",) and "bf16" in precisions_on(torch.device("cuda"))
    vocab = Vocab.build(tiny_corpus.all_captions("train"))
    tc = TrainConfig.from_dict({**preset("tiny").train.to_dict(), "precision": "bf16"})
    with pytest.raises(ValueError, match="train in fp32"):
        Trainer(tiny_model(len(vocab)), vocab, tc, tmp_path / "run", progress=False)
    data = tmp_path / "data"
    tiny_corpus.save(data)
    never = tmp_path / "never"
    assert main(["train", "--data", "synthetic", "--data-dir", str(data), "--preset", "tiny", "--device", "cpu",
                 "--out", str(never), "--set", "precision=bf16"]) == 2
    assert "slr train: precision bf16 needs a CPU with AVX-512 or AMX" in capsys.readouterr().err
    assert not never.exists()


def test_an_unknown_precision_or_schedule_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="precision 'fp16'"):
        Trainer(tiny_model(), Vocab.build(["a b"]), TrainConfig(precision="fp16"), tmp_path, progress=False)
    with pytest.raises(ValueError, match="lr_schedule 'linear': one of constant, cosine"):
        Trainer(tiny_model(), Vocab.build(["a b"]), TrainConfig(lr_schedule="linear"), tmp_path, progress=False)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_the_partial_phase_steps_at_its_schedules_rates(schedule: str, tiny_corpus, tmp_path: Path) -> None:
    """The rate each optimiser step of partial-model learning really used: flat, or a half cosine falling from the
    phase's start to LR_FLOOR of it at its last step; the full phase before it stays flat either way."""
    vocab = Vocab.build(tiny_corpus.all_captions("train"))
    m = tiny_model(len(vocab))
    tc = TrainConfig(batch_size=8, lr=2e-3, full_steps=3, partial_steps=7, partial_lr_scale=0.5, lr_schedule=schedule)
    trainer = Trainer(m, vocab, tc, tmp_path, progress=False)
    used: list[float] = []
    step = trainer.opt.step
    trainer.opt.step = lambda *a, **k: (used.append(trainer.opt.param_groups[0]["lr"]), step(*a, **k))[1]
    stream = BatchStream(tensorize(tiny_corpus.splits["train"], vocab, m.cfg), 8, seed=0)
    for phase in phases_for(tc):
        trainer.run_phase(phase, stream, torch.Generator().manual_seed(0), None)
    full, partial = used[:3], used[3:]
    assert full == [2e-3] * 3 and len(partial) == 7 and partial[0] == pytest.approx(1e-3)
    if schedule == "constant":
        assert partial == [pytest.approx(1e-3)] * 7
    else:
        assert all(a > b for a, b in zip(partial, partial[1:]))
        assert partial[-1] == pytest.approx(1e-3 * LR_FLOOR) and partial[3] == pytest.approx(1e-3 * (1 + LR_FLOOR) / 2)


def test_beam_search_at_beam_one_is_greedy() -> None:
    m = tiny_model()
    z = torch.randn(5, m.cfg.latent_dim) * 3
    dec = m.sentence_decoder

    def step(tokens, state):
        h, c, zs = state
        lp, h2, c2 = dec.step(torch.tensor(tokens), h, c, zs)
        return lp.detach().numpy(), (h2, c2, zs)

    state = dec.init_state(z)
    greedy = greedy_search(step, state, 5, 8)
    beam1 = beam_search(step, state, 5, 1, 8, select=lambda s, i: s[:, torch.as_tensor(i)])
    assert beam1 == greedy
    beam3 = m.generate_sentences(z, beam_size=3, max_len=8)
    assert len(beam3) == 5 and all(len(x) <= 8 for x in beam3)


def test_beam_search_finds_a_better_sequence_than_greedy() -> None:
    """A hand-built two-step decoder where the greedy first word leads to a poor second word."""
    vocab = 5  # 0 pad, 1 bos, 2 eos, 3 'a', 4 'b'
    table = {  # log-probs of the next word given the previous one
        BOS_ID: [-9, -9, -9, np.log(0.6), np.log(0.4)],
        3: [-9, -9, np.log(0.3), np.log(0.35), np.log(0.35)],
        4: [-9, -9, np.log(0.99), -9, -9],
    }

    def step(tokens, state):
        return np.array([table.get(t, [-9, -9, 0.0, -9, -9]) for t in tokens], dtype=np.float64), state

    state = (np.zeros((1, 1, 1)),)
    assert greedy_search(step, state, 1, 4)[0][0] == 3
    best = beam_search(step, state, 1, 2, 4, select=lambda s, i: s[:, i])
    assert best == [[4]]  # 0.4 * 0.99 beats 0.6 * 0.35 * ...
    assert vocab == len(table[BOS_ID])


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    vocab = Vocab.build(["a red circle moves left", "a blue square grows"])
    m = tiny_model(len(vocab))
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, m, vocab, TrainConfig(seed=7), {"global_step": 3})
    ck = load_checkpoint(path)  # weights_only=True inside
    video, tokens, lengths = tiny_inputs(m.cfg)
    tokens = tokens.clamp(max=len(vocab) - 1)
    torch.testing.assert_close(ck.model.encode(video, tokens, lengths).mu, m.encode(video, tokens, lengths).mu)
    assert ck.vocab.words == vocab.words and ck.train_config.seed == 7 and ck.extra["global_step"] == 3
    assert ck.model.cfg == m.cfg and len(ck.sha256) == 64


def test_trained_run_resumes_after_finished_phases(tiny_run: Path, tiny_corpus) -> None:
    from model.train import train

    before = load_checkpoint(tiny_run / "checkpoint.pt")
    assert before.extra["done_phases"] == ["full", "partial"]
    train(tiny_corpus, preset("tiny"), tiny_run, seed=0, progress=False, resume=True)
    after = load_checkpoint(tiny_run / "checkpoint.pt")
    assert after.extra["global_step"] == before.extra["global_step"]  # nothing left to do


def test_again_runs_a_finished_phase_once_more_from_the_checkpoint(tiny_run: Path, tiny_corpus, tmp_path) -> None:
    """--again: the phase's steps run once more from the run's weights (the video decoder's own phase with new
    terms, say); the other phases are not rerun."""
    import shutil

    from model.train import train

    run = tmp_path / "again"
    shutil.copytree(tiny_run, run)
    before = load_checkpoint(run / "checkpoint.pt")
    train(tiny_corpus, preset("tiny"), run, seed=0, progress=False, resume=True, again=("partial",))
    after = load_checkpoint(run / "checkpoint.pt")
    assert after.extra["global_step"] == before.extra["global_step"] + preset("tiny").train.partial_steps
    assert after.extra["done_phases"] == ["full", "partial", "partial"]


def test_evaluation_numbers_on_hand_checked_cases() -> None:
    refs = {"a": ["a red circle moves left"], "b": ["a blue square grows"]}
    perfect = caption_scores(refs, {"a": "a red circle moves left", "b": "a blue square grows"}, meteor=False)
    assert perfect["BLEU@1"] == pytest.approx(1.0) and perfect["BLEU@4"] == pytest.approx(1.0, abs=1e-6)
    wrong = caption_scores(refs, {"a": "green", "b": "yellow"}, meteor=False)
    assert wrong["BLEU@1"] < 0.01
    acc = attribute_accuracy(["a red ball moves left", "the blue box is shrinking"],
                             [{"colour": "red", "shape": "circle", "motion": "left"},
                              {"colour": "blue", "shape": "square", "motion": "grow"}])
    assert acc == {"colour": 1.0, "shape": 1.0, "motion": 0.5, "all": 0.5}
    # Two objects: a caption may name either first; it is scored against the object it names.
    two = {"colour": "red", "shape": "circle", "motion": "left",
           "objects": [{"colour": "red", "shape": "circle", "motion": "left"},
                       {"colour": "blue", "shape": "square", "motion": "grow"}]}
    acc = attribute_accuracy(["the blue box grows while a red ball moves left", "a blue ball moves left",
                              "a green star is still"], [two, two, two])
    assert acc == {"colour": 1 / 3, "shape": 2 / 3, "motion": 2 / 3, "all": 1 / 3}
    assert frame_mse(np.zeros((1, 2, 2, 3)), np.full((1, 2, 2, 3), 2 / 255)) == pytest.approx(4.0)


def test_meteor_runs_and_closes_its_java_process() -> None:
    refs = {"a": ["a red circle moves left"], "b": ["a blue square grows"]}
    scores = caption_scores(refs, {"a": "a red circle moves left", "b": "a square"})
    assert 0.3 < scores["METEOR"] < 1.0


def test_probe_reads_rendered_clips() -> None:
    from model.data.shapes import render_clip

    truths = [{"colour": c, "shape": "square", "motion": mo}
              for c in ("red", "blue", "yellow") for mo in ("left", "right", "up", "down")]
    clips = [render_clip(t, 8, 36, 64, np.random.default_rng(i)).astype(np.float32) / 255 for i, t in enumerate(truths)]
    acc = probe_accuracy(clips, truths)
    assert acc["colour"] >= 0.9 and acc["motion"] >= 0.9, acc


def test_probe_reads_a_shrinking_triangle_as_shrinking() -> None:
    """A triangle shrinks about its centre as the generator draws it; its pixels sit low in its box, so their
    centroid rises more than the probe's motion threshold: read from the centroid it was "up"."""
    from model.data.shapes import COLOUR_RGB, ObjectSpec, _compose

    t = 8
    obj = ObjectSpec("red", "triangle", "shrink", np.array(COLOUR_RGB["red"], np.float32),
                     np.full(t, 32.0, np.float32), np.full(t, 18.0, np.float32),
                     np.linspace(15.0, 3.0, t).astype(np.float32), "big", "none")
    clip = _compose([obj], t, 36, 64, np.full(3, 240.0, np.float32)).astype(np.float32) / 255
    mask = np.linalg.norm(clip - clip[0, 0, 0], axis=-1) > 0.25
    centroid_y = [np.nonzero(m)[0].mean() for m in mask]
    assert centroid_y[0] - centroid_y[-1] > 0.08 * 36  # the centroid alone reads "up"
    assert probe_video(clip).motion == "shrink" and probe_video(clip).shape == "triangle"


def test_cli_trains_evaluates_and_explains(tmp_path: Path) -> None:
    slr = [sys.executable, "-m", "cli.main"]
    out = subprocess.run(slr + ["--help"], capture_output=True, text=True, check=True).stdout
    assert "train" in out and "export" in out and "serve" in out
    data, run = tmp_path / "data", tmp_path / "run"
    subprocess.run(slr + ["data", "synth", "--preset", "tiny", "--clips", "60", "--out", str(data)], check=True)
    subprocess.run(slr + ["train", "--data", "synthetic", "--data-dir", str(data), "--preset", "tiny", "--steps", "4",
                          "--out", str(run)], check=True, capture_output=True)
    res = subprocess.run(slr + ["eval", str(run), "--no-meteor", "--max-clips", "6"], check=True,
                         capture_output=True, text=True)
    assert "| caption |" in res.stdout and (run / "eval_test.json").exists()
    bad = subprocess.run(slr + ["train", "--data", "synthetic", "--data-dir", str(data), "--preset", "tiny",
                                "--out", str(tmp_path / "never"), "--set", "precision=fp16"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "precision 'fp16': one of fp32, bf16" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "never").exists()


@pytest.mark.parametrize("kind", ["lstm", "vae"])
def test_baselines_train_one_task_each(kind: str, tiny_corpus, tmp_path: Path) -> None:
    from model.baselines import train_baseline
    from model.evaluate import evaluate_tasks

    ck = load_checkpoint(train_baseline(tiny_corpus, preset("tiny"), "caption", kind, tmp_path, steps=3,
                                        progress=False))
    assert ck.extra["vae"] is (kind == "vae") and ck.extra["done_phases"] == ["caption"]
    res = evaluate_tasks(ck.model, ck.vocab, tiny_corpus.splits["test"][:4], meteor=False, tasks=["caption"])
    assert set(res) == {"clips", "caption"}


def test_word_dropout_replaces_only_words_with_unk() -> None:
    from core.vocab import UNK_ID
    from model.data.dataset import drop_words

    tin = torch.tensor([[BOS_ID, 7, 8, 9, 10, PAD_ID, PAD_ID]] * 200)
    out = drop_words(tin, 0.5, torch.Generator().manual_seed(0))
    assert (out[:, 0] == BOS_ID).all() and (out[:, 5:] == PAD_ID).all()
    words = out[:, 1:5]
    assert ((words == tin[:, 1:5]) | (words == UNK_ID)).all()
    assert 0.4 < (words == UNK_ID).float().mean().item() < 0.6
    assert torch.equal(drop_words(tin, 0.0, torch.Generator()), tin)


def test_train_set_overrides_a_preset_field_and_refuses_unknown_names() -> None:
    """`slr train --set NAME=VALUE`: ModelConfig or TrainConfig fields, values as JSON (a bare word a string)."""
    from cli.train import apply_overrides

    p = preset("quality")
    apply_overrides(p, ["lambda_pose=0", "video_decoder=layers", "partial_mix=[0.4, 0.3, 0.3]"])
    assert p.train.lambda_pose == 0 and p.model.video_decoder == "layers" and p.train.partial_mix == (0.4, 0.3, 0.3)
    for bad in ("no_such_field=1", "lambda_pose"):
        with pytest.raises(SystemExit):
            apply_overrides(p, [bad])
