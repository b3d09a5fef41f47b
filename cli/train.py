"""``mcodec train image``: train or fine-tune an image codec's model on a folder of images."""

from __future__ import annotations

from pathlib import Path

import click

from mcodec.codec import CodecError

from .device import check_device


def _run_options(command):
    """--out, --run-dir, --steps and --max-minutes, shared by every training command."""
    command = click.option(
        "--max-minutes",
        type=click.FloatRange(min=0, min_open=True),
        help="also stop after this many minutes (the learning rate decays towards the end either way)",
    )(command)
    command = click.option(
        "--steps", type=click.IntRange(1), default=20000, show_default=True, help="total steps"
    )(command)
    command = click.option(
        "--run-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="checkpoint folder; a run resumes from it (default: OUT without suffix + '.run')",
    )(command)
    return click.option(
        "--out",
        required=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="model file to write (safetensors), usable with --weights",
    )(command)


def _start_run(out: Path, run_dir: Path | None, device: str, force: bool) -> Path:
    """Checks before training starts (OUT not overwritten unless --force, the device exists); the run
    folder, by default OUT without suffix + '.run'."""
    if out.exists() and not force:
        raise CodecError(f"{out} exists (use --force to overwrite)")
    check_device(device)
    return run_dir or out.with_suffix(".run")


def _seconds(minutes: float | None) -> float | None:
    return minutes * 60 if minutes else None


@click.group()
def train() -> None:
    """Train codec models on your own data."""


@train.command("image")
@click.argument("data", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--codec",
    "codec_id",
    type=click.Choice(["factorized", "hyperprior", "meanscale", "checkerboard"]),
    default="factorized",
    show_default=True,
)
@_run_options
@click.option("--batch", type=click.IntRange(1), default=12, show_default=True)
@click.option("--crop", type=click.IntRange(16), default=128, show_default=True, help="crop side (px)")
@click.option("--lr", type=float, default=3e-4, show_default=True)
@click.option(
    "--width",
    type=(int, int),
    help="channels N (transforms) and M (latent); default 96 128 (factorized), 128 192 (hyperpriors); "
    "with --init, the file's, or a larger M to widen a meanscale model's latent",
)
@click.option(
    "--synthesis-width",
    type=click.IntRange(1, 1024),
    help="hyperpriors: hidden channels of the synthesis (the decoder's transform; default N, or the --init "
    "file's); with --init, a larger value widens the file's synthesis, which starts as the same function",
)
@click.option(
    "--init",
    "init_weights",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="start from this model file (e.g. the shipped weights) instead of random weights; a hyperprior "
    "also starts from a factorized model or the other hyperprior variant (transforms and gains; the "
    "hyper networks from scratch)",
)
@click.option(
    "--quality",
    "qualities",
    type=click.IntRange(1, 8),
    multiple=True,
    help="train only this quality's operating point (repeatable; default: all of 1..8). The others share "
    "the transforms, so they drift: use the result at the qualities trained",
)
@click.option(
    "--lambda",
    "lmbda",
    type=click.FloatRange(0, 100, min_open=True),
    help="the lambda of the one --quality trained (loss = lambda * 255^2 * MSE + bpp; default: the "
    "--init model's, else compressai's 0.0018 ... 0.18 for qualities 1..8)",
)
@click.option(
    "--rounded-synthesis",
    is_flag=True,
    help="hyperpriors: the synthesis trains on y rounded as a decoder sees it (straight-through), the "
    "rate on noisy y (mixed quantization); best as a fine-tune of a model trained without it",
)
@click.option(
    "--channel-shuffle",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="the chance that a crop's colour channels are put in a random order (colour augmentation: keeps "
    "the entropy models from narrowing around the training photos' hues)",
)
@click.option(
    "--rotate-crops",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="the chance that a crop is turned by 1, 2 or 3 quarter turns (with the flips, every orientation "
    "of the square: edges and textures at every angle, exactly)",
)
@click.option(
    "--rescale-crops",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="the chance that a crop is cut from a window up to 3.3x larger, downscaled to the crop size "
    "(scale augmentation: each photo's textures at many scales, as photos are shared downsized; "
    "--rescale-max lets windows be smaller too)",
)
@click.option(
    "--rescale-max",
    type=click.FloatRange(1, 2),
    default=1.0,
    show_default=True,
    help="the largest scale of a --rescale-crops crop: above 1 some crops are cut from a smaller window "
    "and upscaled (content as smooth per pixel as a large camera photo's)",
)
@click.option(
    "--quality-balance",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="weigh each crop's loss by (its lambda / the lambdas' geometric mean)^-A: the low qualities' "
    "smaller losses get more say in the shared transforms (0.5: about equal say)",
)
@click.option(
    "--area-power",
    type=click.FloatRange(0, 2),
    default=0.0,
    show_default=True,
    help="draw each training image in proportion to its pixel count^P (1: every pixel alike, so large "
    "photos give more crops; 0: every image alike)",
)
@click.option(
    "--model-id",
    help="the model's id, kept in the model file and shown by `mcodec info`  [default: CODEC-custom]",
)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option(
    "--amp",
    is_flag=True,
    help="bfloat16 autocast for the transforms (entropy models stay float32): faster on a GPU, and 2.5x "
    "faster steps on a CPU with AMX",
)
@click.option("--force", is_flag=True, help="overwrite OUT")
def train_image(
    data,
    codec_id,
    out,
    run_dir,
    steps,
    max_minutes,
    batch,
    crop,
    lr,
    width,
    synthesis_width,
    init_weights,
    qualities,
    lmbda,
    rounded_synthesis,
    channel_shuffle,
    rotate_crops,
    rescale_crops,
    rescale_max,
    quality_balance,
    area_power,
    model_id,
    device,
    amp,
    force,
):
    """Train on the images in DATA (random crops, qualities 1..8 in one model, or those of --quality),
    then export OUT."""
    from mcodec.codec.image.factorized_model import ARCH as FACTORIZED_ARCH
    from mcodec.codec.image.factorized_model import GainedFactorizedPrior
    from mcodec.codec.image.hyperprior import VARIANTS
    from mcodec.codec.image.hyperprior_model import ARCH as HYPERPRIOR_ARCH
    from mcodec.codec.image.hyperprior_model import GainedHyperprior
    from mcodec.codec.image.lambdas import LAMBDAS, lambdas_of
    from mcodec.codec.image.model_meta import sizes
    from mcodec.codec.image.model_meta import synthesis_width as file_synthesis_width
    from mcodec.codec.model_file import load_weights
    from mcodec.codec.training import image_init
    from mcodec.codec.training.export import export_checkpoint
    from mcodec.codec.training.image_task import TrainConfig
    from mcodec.codec.training.image_task import train as run_training

    if rounded_synthesis and codec_id == "factorized":
        raise CodecError("--rounded-synthesis is for the hyperprior codecs (factorized has no means)")
    if lmbda is not None and len(set(qualities)) != 1:
        raise CodecError("--lambda needs exactly one --quality: the operating point it sets")
    model_id = model_id or f"{codec_id}-custom"
    run_dir = _start_run(out, run_dir, device, force)
    factorized = codec_id == "factorized"
    # A hyperprior can also start from a factorized model (its transforms; see codec/training/image_init.py).
    archs = (FACTORIZED_ARCH,) if factorized else (HYPERPRIOR_ARCH, FACTORIZED_ARCH)
    w = load_weights(init_weights, archs) if init_weights else None
    if w is not None:  # the file's n and m (checked), or a wider latent (codec/training/image_widen.py)
        file_width = sizes(w)[:2]
        if width is not None and (width[0] != file_width[0] or width[1] < file_width[1]):
            raise CodecError(
                f"--width {width[0]} {width[1]}: a model file of {file_width[0]} {file_width[1]} channels "
                "starts the same widths or a wider latent (the same N, a larger M)"
            )
        width = width or file_width
    lambdas = lambdas_of(w.metadata, len(LAMBDAS)) if w is not None else LAMBDAS
    if lmbda is not None:
        lambdas = tuple(lmbda if q == qualities[0] else v for q, v in enumerate(lambdas, 1))
    if qualities:
        chosen = ", ".join(f"{q} (lambda {lambdas[q - 1]:g})" for q in sorted(set(qualities)))
        click.echo(f"training quality {chosen} only: the other qualities drift", err=True)
    width = width or ((96, 128) if factorized else (128, 192))
    # a hyperprior file's synthesis width carries over (its g_s has that shape), or widens (image_widen.py)
    file_ns = file_synthesis_width(w, sizes(w)[0]) if w is not None and "variant" in w.metadata else None
    if synthesis_width is not None and factorized:
        raise CodecError("--synthesis-width is for the hyperprior codecs")
    if synthesis_width is not None and w is not None and synthesis_width != file_ns:
        if (
            file_ns is None
            or synthesis_width < file_ns
            or w.metadata.get("variant") != VARIANTS[codec_id]
            or width[1] != sizes(w)[1]
        ):
            raise CodecError(
                f"--synthesis-width {synthesis_width}: a model file starts its own synthesis width or a "
                "wider one, in a model of its variant and latent width"
            )
    ns = synthesis_width or file_ns
    model = (
        GainedFactorizedPrior(*width) if factorized else GainedHyperprior(VARIANTS[codec_id], *width, ns=ns)
    )
    init_state, frozen = None, []
    if w is not None:
        init_state, frozen = image_init.init_state(model, w)
        if frozen:
            click.echo(
                f"warm start: {len(frozen)} transform parameters from the "
                f"{w.metadata.get('variant', w.metadata['arch'])} model, frozen "
                f"for the first {image_init.WARM_START_FROZEN_STEPS} steps",
                err=True,
            )
    cfg = TrainConfig(
        steps=steps,
        batch=batch,
        crop=crop,
        lr=lr,
        max_seconds=_seconds(max_minutes),
        amp=amp,
        frozen=tuple(frozen),
        frozen_steps=image_init.WARM_START_FROZEN_STEPS if frozen else 0,
        qualities=tuple(sorted(set(qualities))),
        lambdas=lambdas,
        rounded_synthesis=rounded_synthesis,
        channel_shuffle=channel_shuffle,
        rescale_crops=rescale_crops,
        rescale_max=rescale_max,
        quality_balance=quality_balance,
        area_power=area_power,
        rotate_crops=rotate_crops,
    )
    if not run_training(model, data, run_dir, cfg, device=device, init_state=init_state):
        return  # a torchrun worker: rank 0 exports
    export_checkpoint(model, run_dir / "checkpoint.pt", out, model_id, lambdas, cfg.qualities)
    click.echo(f"wrote {out}", err=True)


@train.command("audio")
@click.argument("data", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_run_options
@click.option("--batch", type=click.IntRange(1), default=16, show_default=True)
@click.option("--seconds", type=click.FloatRange(0.1), default=1.0, show_default=True, help="crop length")
@click.option("--lr", type=float, default=3e-4, show_default=True)
@click.option(
    "--width",
    type=(int, int),
    default=(16, 128),
    show_default=True,
    help="base channels and latent dimension",
)
@click.option(
    "--init",
    "init_weights",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="start from this model file (e.g. the shipped weights)",
)
@click.option(
    "--context-units",
    type=click.IntRange(0, 16),  # MAX_CONTEXT of codec/audio/model.py (the CLI imports no torch at start)
    help="residual units at the latent frame rate in the decoder (dilations 1, 3, 9: more context "
    "at ~3% of the decoder's cost each); with --init, units the file lacks start as the identity  "
    "[default: the file's, else 0]",
)
@click.option(
    "--context-lr-factor",
    type=click.FloatRange(0, min_open=True),
    default=1.0,
    show_default=True,
    help="the context units learn at this multiple of --lr (new units starting at the identity in a "
    "low-rate fine-tune would barely move)",
)
@click.option(
    "--focus-stages",
    type=click.IntRange(1),
    help="train half the batches at this many RVQ stages (8 = 6 kbit/s), the rest at 1..all",
)
@click.option(
    "--speed-perturb",
    type=click.FloatRange(0, 0.5),
    default=0.0,
    show_default=True,
    help="play each crop at a random speed within 1 +- this (0.1: 0.9x..1.1x; pitch and tempo move "
    "together): more voices than the data holds",
)
@click.option(
    "--group-weight",
    "group_weights",
    multiple=True,
    type=(str, click.FloatRange(0)),
    metavar="GROUP WEIGHT",
    help="draw this top-level subfolder's crops in proportion to WEIGHT (others: 1; repeatable), say "
    "--group-weight klettres 2 for more voices than the folders' even split gives",
)
@click.option(
    "--decoder-only",
    is_flag=True,
    help="with --init: train the decoder alone on the codes the codec's encoder picks; the encoder, "
    "codebooks and code priors stay the init file's, so the bitstream of any input is unchanged",
)
@click.option(
    "--adversarial",
    is_flag=True,
    help="add multi-scale STFT and multi-period discriminators with feature matching (training only: the "
    "model file is the same); their state is kept in the run's checkpoint",
)
@click.option(
    "--adv-start",
    type=click.IntRange(0),
    help="--adversarial: the generator's loss has the adversarial terms from this step on (the "
    "discriminators learn from the start)  [default: 0]",
)
@click.option(
    "--adv-weight",
    type=click.FloatRange(0),
    help="--adversarial: weight of the adversarial loss (hinge)  [default: 0.1]",
)
@click.option(
    "--feat-weight",
    type=click.FloatRange(0),
    help="--adversarial: weight of the feature-matching loss  [default: 0.2]",
)
@click.option(
    "--disc-lr",
    type=click.FloatRange(0, min_open=True),
    help="--adversarial: the discriminators' learning rate  [default: --lr]",
)
@click.option("--model-id", default="rvq-custom", show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--force", is_flag=True, help="overwrite OUT")
def train_audio_command(
    data,
    out,
    run_dir,
    steps,
    max_minutes,
    batch,
    seconds,
    lr,
    width,
    init_weights,
    context_units,
    context_lr_factor,
    focus_stages,
    speed_perturb,
    group_weights,
    decoder_only,
    adversarial,
    adv_start,
    adv_weight,
    feat_weight,
    disc_lr,
    model_id,
    device,
    force,
):
    """Train the RVQ audio codec on the audio files under DATA (any rates; 24 kHz mono inside), then
    learn its per-stage priors from the same data and export OUT."""
    import torch

    from mcodec.codec.audio.model import ARCH, RVQAutoencoder, sizes
    from mcodec.codec.model_file import load_weights
    from mcodec.codec.training.audio_task import (
        AudioTrainConfig,
        code_histograms,
        init_state_from,
        train_audio,
    )
    from mcodec.codec.training.export import export_rvq_model

    given = {
        "--adv-start": adv_start,
        "--adv-weight": adv_weight,
        "--feat-weight": feat_weight,
        "--disc-lr": disc_lr,
    }
    for name, value in given.items():
        if value is not None and not adversarial:
            raise click.BadParameter("needs --adversarial", param_hint=name)
    if decoder_only and not init_weights:
        hint = "--decoder-only"
        raise click.BadParameter("needs --init (the encoder and codebooks it keeps)", param_hint=hint)
    run_dir = _start_run(out, run_dir, device, force)
    init_state, shape, context = None, width, context_units or 0
    if init_weights:
        w = load_weights(init_weights, ARCH)
        *shape, file_context = sizes(w)  # the file's base, dim, stages and codebook size, not --width
        if context_units is not None and context_units < file_context:
            raise click.BadParameter(
                f"the model file has {file_context} context units: keep them or add more",
                param_hint="--context-units",
            )
        context = file_context if context_units is None else context_units
        init_state = init_state_from(w)
    model = RVQAutoencoder(*shape, context=context)
    if focus_stages is not None and focus_stages > model.n_q:
        raise click.BadParameter(f"the model has {model.n_q} stages", param_hint="--focus-stages")
    cfg = AudioTrainConfig(
        steps=steps,
        batch=batch,
        seconds=seconds,
        lr=lr,
        max_seconds=_seconds(max_minutes),
        focus_stages=focus_stages,
        speed=speed_perturb,
        group_weights=tuple(group_weights),
        context_lr_factor=context_lr_factor,
        decoder_only=decoder_only,
        adversarial=adversarial,
        disc_lr=disc_lr,
    )
    if adv_start is not None:
        cfg.adv_start = adv_start
    if adv_weight is not None:
        cfg.adv_weight = adv_weight
    if feat_weight is not None:
        cfg.feat_weight = feat_weight
    if not train_audio(model, data, run_dir, cfg, device=device, init_state=init_state):
        return  # a torchrun worker: rank 0 exports
    model.cpu()
    # a decoder-only run (which has an init file, w) codes as its init model did: its priors are kept
    priors = w.tables("tables") if decoder_only else code_histograms(model, data)
    step = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)["step"]
    export_rvq_model(model, priors, out, model_id, {"steps": str(step)})
    click.echo(f"wrote {out}", err=True)
