"""Zhong et al. 2023's NSynth pretraining, as their reference code runs it.

    python -m pretrain --config=zhong_pretrain --config.data.root=/data/nsynth --workdir=runs/zhong_nsynth

Sources: Zhong et al., APSIPA 2023, and nii-yamagishilab/predominant-instrument-recognition —
`experiments/irnet.sh` (seed 906, Adam lr 1e-3, cosine schedule with 3 warm-up epochs stepped per
batch, 30 epochs, batch 128, cross-entropy with label smoothing 0.05, `--augment stitch`, 1-s
segments, mixup p 0.5 with α 0.4, effects `--aug_p 0.3`, synchronised batch-norm),
`model_configs/irnet.py` (the network: encoders/zhong.py, `sinc_zhong`; 1006 instrument classes
behind a 512-unit dense + batch-norm layer), `src/lms/mie.py` (Adam's weight_decay=5e-4 added to
the gradient; the last of the 30 epochs is what fine-tuning loads, `last.ckpt`),
`write_metadata_nsynth.py` (NSynth's train and valid pooled, shuffled with seed 39, cut 96 % / 4 %;
notes with mean |amplitude| < 5e-4 dropped) and `src/datasets/nsynth_dataset.py` (the first
second of each note; with probability 0.5 same-instrument notes, silence-trimmed, joined instead;
the effect chain: noise 0.3, gain 0.2, high- or low-pass, delay 0.5, pitch shift 0.4, reverb 0.3).

What this config sets: all of the above — `data.splits=zhong_pooled`, the mean-|x| silence test,
crops at each note's onset (`crop_max_offset_seconds=0`) of exactly 16,000 samples (the waveform
front-end with 1.0-s patches), `family_mixup` on `instrument` targets with `hidden_dim=512`,
`train.select_by=last` without early stopping. Validation (4 % of the pooled notes, as theirs)
is still evaluated every epoch.

Deliberate deviations:
- The effects are the toolkit's (corpora/augment.py): their parameter ranges, and their order
  (ours: pitch shift, gain, low-pass, high-pass, delay, reverb, noise) are ours; their
  high-/low-pass is always one of the two, ours draws each with probability 0.5.
- Their concatenation trims silence with a 24-kHz → 16-kHz resampled copy of each note
  (`trim_audio/`, prepared outside their repository); ours trims the 16-kHz note at −40 dB.
- Batch-norm's running variance: flax's biased estimate, PyTorch's unbiased (encoders/zhong.py).

Variant: `zhong_pretrain:encoder=NAME` keeps the recipe and swaps the network (with its own
front-end), e.g. `encoder=compact` for a CPU-sized trial.
"""

from configs import _common


def get_config(arg=None):
    from configs import parse_arg

    values = parse_arg(arg, encoder="sinc_zhong")
    objective = dict(
        name="family_mixup", target="instrument", label_smoothing=0.05, mixup_prob=0.5, mixup_alpha=0.4, hidden_dim=512
    )
    config, _ = _common.nsynth_pretraining(f"encoder={values['encoder']}", objective)
    if config.frontend.name == "waveform":
        config.frontend = dict(name="waveform", patch_frames=16000, patch_hop=16000)  # 1.0-s segments
    config.seed = 906
    config.data.splits = "zhong_pooled"
    config.data.silence_measure, config.data.silence_threshold = "mean_abs", 5e-4
    config.data.crop_max_offset_seconds = 0.0
    config.data.augment = dict(
        concat_prob=0.5,
        chain_prob=0.3,
        noise=0.3,
        gain=0.2,
        lowpass=0.5,
        highpass=0.5,
        delay=0.5,
        pitch_shift=0.4,
        reverb=0.3,
        time_stretch=0.0,
    )
    config.train.batch_size = 128
    config.train.num_epochs = 30
    config.train.select_by = "last"
    config.train.early_stopping_patience = 10**9
    config.optimizer = dict(
        name="adam", learning_rate=1e-3, weight_decay=5e-4, schedule="cosine", warmup_steps=0, warmup_epochs=3
    )
    return config
