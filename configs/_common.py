"""Defaults shared by the pretraining configs: Taenzer et al.'s common settings (docs/methods.md §4)."""

from ml_collections import ConfigDict


def nsynth_data() -> ConfigDict:
    return ConfigDict(
        dict(
            dataset="nsynth",
            root="",  # or $NSYNTH_DIR; empty and unset → the embedded SoundFont corpus
            require_real=False,
            source="files",  # or "tfds": a prepared TensorFlow Datasets copy (pip install -e ".[tfds]")
            tfds_dir="",  # its data_dir (or version folder); empty → $TFDS_DATA_DIR or ~/tensorflow_datasets
            tfds_name="nsynth/full",
            extract_dir="",  # where .jsonwav.tar.gz archives are unpacked (default: beside them) or a
            # TFDS copy converted to the official layout (default: the cache, $OVERTONE_CACHE)
            families=(),  # e.g. ('keyboard', 'string'); empty = all 11
            sources=(),  # subset of ('acoustic', 'electronic', 'synthetic')
            pitch_min=0,
            pitch_max=127,
            splits="official",  # or "zhong_pooled": train + valid pooled and re-cut 96/4 % (Zhong et al.)
            drop_silent=True,
            silence_threshold=1e-4,  # the measure's value at or below which a note is silent
            silence_measure="peak",  # peak |amplitude|, or "mean_abs" (Zhong et al.: 5e-4)
            max_bad_fraction=0.01,  # of a whole split; more unreadable files stop the run
            max_seconds=3600.0,  # longer audio files (by their header) are refused as unreadable
            segment_patches=1,  # training crop length in 0.96-s patches (1 → 0.975 s)
            crop_max_offset_seconds=3.0,  # training crops start in [0, this] (notes hold 3 s)
            workers=2,
            prefetch=4,
            # pre-decoded 16-bit PCM (python -m pretrain.cache): "auto" = the default folder's
            # when built and fresh; "" = decode the files; a folder = that cache, required
            pcm_cache="auto",
            embedded=dict(cache_dir="", pitch_step=6, velocities=(50, 100)),
            # training-only augmentation probabilities (corpora/augment.py, corpora/notes.py)
            augment=dict(
                concat_prob=0.0,
                chain_prob=1.0,  # the probability that the effects below run at all
                pitch_shift=0.0,
                gain=0.0,
                lowpass=0.0,
                highpass=0.0,
                delay=0.0,
                reverb=0.0,
                noise=0.0,
                time_stretch=0.0,
            ),
        )
    )


def runtime(batch_size: int = 64) -> ConfigDict:
    return ConfigDict(
        dict(
            seed=0,
            frontend=dict(name="vggish_logmel"),
            # how the encoder computes (encoders/compute.py); parameters are the same either way.
            # conv: auto | xla | im2col; dtype: float32 | bfloat16 (mixed precision, fp32 master weights)
            compute=dict(conv="auto", dtype="float32"),
            optimizer=dict(name="adam", learning_rate=1e-4, weight_decay=0.0, schedule="constant", warmup_steps=0),
            train=dict(
                batch_size=batch_size,
                num_epochs=50,
                num_steps=0,  # > 0 overrides num_epochs
                eval_every_steps=0,  # 0 → once per epoch
                checkpoint_every_steps=0,  # 0 → at every evaluation
                log_every_steps=10,
                early_stopping_patience=5,  # evaluations without a better validation `select_by`
                select_by="loss",  # the checkpoint evaluated: lowest validation loss, e.g. probe_accuracy, or last
                keep_checkpoints=2,
                transfer_guard="allow",  # "disallow": any implicit host<->device transfer in the loop is an error
            ),
        )
    )


def nsynth_pretraining(arg, objective: dict, **variants) -> tuple[ConfigDict, dict]:
    """An NSynth pretraining config with `objective`; `arg` may set `encoder=`, `frontend=` (a
    registered front-end with its defaults) and any of `variants` (name → default). Returns the
    config and the parsed variant values."""
    from configs import parse_arg

    values = parse_arg(arg, encoder="vggish", frontend="", **variants)
    config = runtime(batch_size=64)
    config.data = nsynth_data()
    config.encoder = dict(name=values["encoder"])
    if values["encoder"] in ("sinc", "sinc_zhong"):  # Zhong et al.'s encoder learns its filters from the waveform
        values["frontend"] = values["frontend"] or "waveform"
    if values["frontend"]:  # checked where it is built; a multi-channel one sets the encoder's in_channels there
        config.frontend = dict(name=values["frontend"])
    config.objective = objective
    config.export = True  # write the encoder bundle to WORKDIR/export at the end (see pretrain.export)
    # at every evaluation, beside the validation loss (pretrain/evaluators.py): a linear probe of
    # instrument family on unseen instruments and collapse diagnostics, over up to max_examples
    # validation notes; "" turns it off
    config.evaluator = dict(probe="family", max_examples=256, seed=0)
    # SpecAugment masks on the training patches (encoders/augment.py); not with denoising
    config.spec_augment = dict(time_masks=0, time_width=10, freq_masks=0, freq_width=8)
    return config, values


def freesound_data() -> ConfigDict:
    return ConfigDict(
        dict(
            dataset="freesound",
            root="",  # FSD50K release folder, or $FSD50K_DIR
            manifest="",  # or a CSV of path,tags[,split]; empty root and manifest → embedded set
            require_real=False,
            vocabulary_size=1000,  # the most frequent train tags (COALA)
            vocabulary_no_below=1,  # … among tags in at least this many training clips
            vocabulary_no_above=1.0,  # … and in at most this fraction of them
            silence_threshold=1e-4,
            max_bad_fraction=0.01,  # of a whole split; more unreadable files stop the run
            max_seconds=3600.0,  # longer audio files (by their header) are refused as unreadable
            segment_patches=3,  # random 2.9-s crops anywhere in the clip
            crop_max_offset_seconds=0.0,  # unused: crops span the whole clip
            workers=2,
            prefetch=4,
            pcm_cache="auto",  # as nsynth_data's
            embedded=dict(cache_dir=""),
        )
    )


def nsynth_denoise(arg, noise: str) -> ConfigDict:
    """Taenzer et al.'s denoising autoencoder with `noise` = additive | multiplicative."""
    objective = dict(name="denoise", noise=noise, noise_std=0.1, keep_prob=0.5)
    config, _ = nsynth_pretraining(arg, objective)
    return config


def downstream(dataset: str, mode: str, *, batch_size: int, embedded: dict) -> ConfigDict:
    """A `python -m finetune` config: task `dataset`, `mode` features | frozen | finetune."""
    config = runtime(batch_size=batch_size)
    config.mode = mode
    # --encoder sets encoder.source: a pretraining work directory or random:NAME; empty → random:<name>
    config.encoder = dict(name="vggish", source="")
    config.data = ConfigDict(
        dict(
            dataset=dataset,
            root="",  # or $OPENMIC_DIR / $IRMAS_DIR; empty and unset → the embedded stand-in
            require_real=False,
            valid_fraction=0.1,  # of the training data, fixed seed (IRMAS: by recording)
            train_fraction=1.0,  # of what remains for training, per class, drawn with the run's seed
            max_bad_fraction=0.01,  # of a whole split; more unreadable files stop the run
            max_seconds=3600.0,  # longer audio files (by their header) are refused as unreadable
            embedding_cache="",  # frozen mode; empty → $OVERTONE_CACHE/embeddings
            workers=2,
            prefetch=4,
            embedded=embedded,
            # finetune mode only (frozen embeddings are computed once): training-time effect
            # probabilities, corpora/augment.py
            augment=dict(
                pitch_shift=0.0, gain=0.0, lowpass=0.0, highpass=0.0, delay=0.0, reverb=0.0, noise=0.0, time_stretch=0.0
            ),
        )
    )
    if dataset == "openmic":  # AttentionMIC's train_val.split: "auto" uses ROOT/train_val.split if it is there
        config.data.val_split = "auto"
    # embeddings every patch_hop_seconds; the head sees windows of window_patches of them
    config.protocol = dict(patch_hop_seconds=0.96, window_patches=10, scale="none")
    # threshold: a number, or "validation" (chosen on threshold_grid: start, stop, step)
    config.evaluation = dict(threshold="0.5", threshold_grid=(0.05, 0.95, 0.01))
    # mixup of two training examples: inputs by λ ~ Beta(α, α), labels as their union or λ-weighted
    config.mix = dict(prob=0.0, alpha=0.4, labels="union")
    # finetune mode: SpecAugment masks on the training patches (encoders/augment.py)
    config.spec_augment = dict(time_masks=0, time_width=10, freq_masks=0, freq_width=8)
    config.model = dict(name="attention", hidden=128, layers=3, dropout=0.6)
    return config


def irmas(mode: str, *, batch_size: int) -> ConfigDict:
    """IRMAS downstream: validation = 15 % of the training recordings, threshold chosen on it."""
    config = downstream(
        "irmas", mode, batch_size=batch_size, embedded=dict(cache_dir="", recordings=4, test_excerpts=36)
    )
    config.data.valid_fraction = 0.15
    config.evaluation.threshold = "validation"
    return config
