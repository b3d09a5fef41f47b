#!/usr/bin/env bash
# One GPU lease, all media at once: the steps run on the device machine (see the device tool's README),
# each call `bash bench/gpu/gpu_session.sh STEP...`. Trainers and fits run detached (setsid) so they go on
# between calls while the machine stays warm; every call ends with `collect`, so a lost machine loses
# only what happened since. Everything stops at the deadline that `setup` writes.
#
# Here, first: `bash bench/gpu/gpu_wheels.sh` (wheels + mcodec's own wheel in .whl/) and the training data in
# .gpu/: images/ as lossless WebP (TRAIN41 of bench/data/image_sets.py), audio/ as 24 kHz mono Ogg Opus
# (`python bench/data/gpu_audio.py SETS/train .gpu/audio --kbps 32`: audio_sets.py's train/ groups, 75 min
# in 17 MB), video/ clips. A call's tree may hold 64 MiB; the tree itself is ~33 MB (the four models are 30),
# so a call carries at most ~31 MB: call 1 carries .whl (~3: mcodec without its models, which setup copies
# from the tree, and soundfile's wheels) and .gpu/images (~28); call 2 carries .gpu/audio (17), which the
# audio run reads through soundfile (the device has no PyAV, and .whl-av's 36 MB fit in no call); a video
# lease carries .whl .whl-av .gpu/video (1). setup copies what came into /tmp/data, which later calls keep.
# Lessons of the first lease (2026-11-23): the machine goes back 30 s after a call, so each next call
# must be ready; collect needs ~60 s (exports), so wait_call stops at 420 s; processes sharing the GPU
# time-slice it (meanscale ran at 0.12-0.39 s/step beside audio and video instead of 0.06).
# Lessons of the second (2026-11-23, session 3):
#  - the 30 s count from the end of a call, whatever else runs here: a local job batched beside a device
#    call, or a long think after one, lost the machine with 10k audio steps on it;
#  - `pkill -f "mcodec train"` matches the calling shell's own command line and kills it: `m[c]odec`;
#  - meanscale from checkpoints/meanscale-wip.safetensors went NaN within 10 steps: --init loaded the
#    file's fp16 buffers, where compressai's likelihood bound (1e-9) is 0, so rates became infinite.
#    --init now takes parameters only; training skips non-finite steps ("skipped" in the log), and
#    probe_image starts from the same init, so the log shows trouble first.
#   (2026-11-23, session 4: the tree is ~20 MB and .whl 1.5, so call 1 carries ~55 MB and call 2 ~56.)
#   call 1, carry .whl .gpu/images:
#       DEADLINE=900 bash bench/gpu/gpu_session.sh setup rehearse_image probe_image start_image
#   call 2, carry .gpu/audio:  bash bench/gpu/gpu_session.sh setup rehearse_audio start_audio wait_call collect
#   call 3:                 bash bench/gpu/gpu_session.sh wait_jobs gpu_encode collect
#   video lease, carry .whl .whl-av .gpu/video:
#       DEADLINE=540 bash bench/gpu/gpu_session.sh setup rehearse_video start_video wait_call collect
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site
RUNS=/tmp/runs
CALL_START=$(date +%s)
mkdir -p "$RUNS"
py() { python3 "$@"; }
left() { echo $(($(cat $RUNS/deadline) - $(date +%s))); }

setup() {  # the deadline (DEADLINE seconds from now, first call only); installs once per machine
  [ -f $RUNS/deadline ] || echo $(($(date +%s) + ${DEADLINE:-1440})) > $RUNS/deadline
  if [ ! -f /tmp/site/.ok ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
      && cp codec/models/*.safetensors /tmp/site/mcodec/codec/models/ \
      && touch /tmp/site/.ok || { echo "install failed"; exit 1; }
  fi
  if [ -d .whl-av ] && [ ! -f /tmp/site/.av ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl-av/*.whl && touch /tmp/site/.av
  fi
  mkdir -p /tmp/data && cp -rn .gpu/. /tmp/data/ 2>/dev/null  # outside the tree: a later call replaces it
  nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
  py -c "import torch, mcodec.codec; print('torch', torch.__version__, torch.cuda.is_available())"
}

rehearse_image() {
  py -m mcodec train image /tmp/data/images --codec meanscale --device cuda --steps 3 --batch 2 --crop 256 \
    --out $RUNS/rehearse_ms.safetensors --force 2>&1 | tail -3
  py -m mcodec encode api/samples/fruits_400x300.png $RUNS/rehearse.mcd --codec meanscale \
    --weights $RUNS/rehearse_ms.safetensors --device cuda --force && echo "image rehearsal ok"
}

rehearse_video() {
  py -m mcodec encode api/samples/tree_128x96.mkv $RUNS/rehearse_v.mcd --preset fast --quality 1 \
    --device cuda --force 2>&1 | tr '\r' '\n' | tail -2 && echo "video rehearsal ok"
}

rehearse_audio() {
  py -m mcodec train audio /tmp/data/audio --device cuda --steps 3 --batch 2 --out $RUNS/rehearse_rvq.safetensors \
    --force 2>&1 | tail -3 && echo "audio rehearsal ok"
}

probe_image() {  # 60 steps at batch 32 in bfloat16 (--amp) from the run's start point: kept if it beats
  # 16 crops / 0.06 s in fp32 by 15% with finite losses
  local init=(--init codec/models/meanscale.safetensors)  # the shipped model (N=96, M=192, ns=128) goes on
  timeout 120 python3 -m mcodec train image /tmp/data/images --codec meanscale --device cuda --batch 32 --amp \
    "${init[@]}" --crop 256 --steps 60 --run-dir $RUNS/probe.run --out $RUNS/probe.safetensors --force \
    > $RUNS/probe.log 2>&1
  py - <<'EOF'
import re
lines = [l for l in open("/tmp/runs/probe.log") if l.startswith("step ")]
sec = float(re.search(r"([0-9.]+) s/step", lines[-1]).group(1)) if lines else 1e9
finite = bool(lines) and "nan" not in lines[-1] and "skipped 0.0000" in lines[-1]
amp = finite and 32 / sec > 1.15 * 16 / 0.06
open("/tmp/runs/image_opts", "w").write("--batch 32 --amp" if amp else "--batch 16")
print(f"probe: {sec:.3f} s/step at batch 32 amp ({32 / sec:.0f} crops/s), finite={finite}: amp={amp}")
print(lines[-1] if lines else open("/tmp/runs/probe.log").read()[-500:])
EOF
}

start_image() {  # meanscale from the shipped model, until 90 s before the deadline; batch/amp from probe_image
  # The shipped model's recipe (codec/models/meanscale.md): channel shuffle and rounded synthesis, and lr 3e-5,
  # which beat 1e-4 from v13 on the CPU (held-back -0.72% against -0.08%; measured at batch 4, not at the GPU's
  # 16-32), and crops of 384, which beat 256 from v16 (held-back -2.68% against -0.22% on the same pixels per
  # step), then crops of 512 from v21 (v22: held-back -0.87% in 82 minutes at batch 1; batch 32 of 512 has 4x
  # the pixels of the probe's 256), half of them rescaled (v19; ~4 ms a crop on the CPU side), each crop's
  # loss weighed by (lambda_q / geometric mean)^-0.75 (v20, v21: the low qualities, where the held-back photos
  # lose to AVIF, steer as much as the top ones), images drawn by their pixels (v21: the large photos give
  # their share of crops), half of the crops turned by quarter turns (v23: held-back -0.76%).
  # /tmp/data/images must be TRAIN41 (bench/data/image_sets.py), never the held-back photos.
  local minutes; minutes=$(py -c "print(max(1, ($(left) - 90) / 60))")
  local init=(--init codec/models/meanscale.safetensors)  # the shipped model (N=96, M=192, ns=128) goes on
  local opts; opts=${IMAGE_OPTS:-$(cat $RUNS/image_opts 2>/dev/null || echo "--batch 16")}
  setsid nohup python3 -m mcodec train image /tmp/data/images --codec meanscale --device cuda $opts "${init[@]}" \
    --channel-shuffle 0.5 --rescale-crops 0.5 --quality-balance 0.75 --area-power 1 --rotate-crops 0.5 --rounded-synthesis --crop ${IMAGE_CROP:-512} --lr ${IMAGE_LR:-3e-5} --steps 1000000 \
    --max-minutes "$minutes" --model-id meanscale-v24 \
    --run-dir $RUNS/meanscale.run --out $RUNS/meanscale.safetensors --force \
    > $RUNS/meanscale.log 2>&1 < /dev/null &
  echo "image training started for $minutes min with $opts, lr ${IMAGE_LR:-3e-5}"
}

start_audio() {  # resumes the shipped model (its weights and EMA codebooks) until 120 s before the deadline
  # The shipped model's CPU recipe (codec/models/rvq.md, v11: half the batches at 4 stages) at batch 32:
  # /tmp/data/audio must hold audio_sets.py's train/ groups (music, speech, klettres, asterisk) for the group
  # weights to apply.
  local minutes; minutes=$(py -c "print(max(1, ($(left) - 120) / 60))")
  local init=(); [ -f codec/models/rvq.safetensors ] && init=(--init codec/models/rvq.safetensors)
  setsid nohup python3 -m mcodec train audio /tmp/data/audio --device cuda --batch 32 --lr ${AUDIO_LR:-3e-5} \
    --focus-stages 4 --context-lr-factor 10 --speed-perturb 0.1 --group-weight klettres 1.8 --group-weight asterisk 0.8 --group-weight speech 0.4 \
    --steps 1000000 "${init[@]}" --max-minutes "$minutes" --model-id rvq-v13 --run-dir $RUNS/rvq.run \
    --out $RUNS/rvq.safetensors --force > $RUNS/rvq.log 2>&1 < /dev/null &
  echo "audio training started for $minutes min"
}
# Next (issue 21, not yet run): the same fine-tune with discriminators, e.g. as start_audio_adv with
# `--adversarial --adv-start 500 --disc-lr 1e-3 --lr 1e-4 --focus-stages 8 --model-id rvq-v13-adv --run-dir
# $RUNS/rvq_adv.run --out $RUNS/rvq_adv.safetensors`; ~3x a plain step's compute on the CPU (codec/models/rvq.md;
# a CPU probe at --disc-lr 3e-4 moved the discriminators' hinge loss only 2.00 -> 1.90 in 830 steps). A run
# resumed from rvq.run with --adversarial newly on starts fresh discriminators; its checkpoint then holds
# them (collect's rvq_partial.pt keeps the generator only).

video_jobs() {  # every fit at once: each is launch-bound (tiny models), so parallel processes barely slow
  # each other. tree.avi's 444 frames go as its 4 groups of 111 (the groups one file would hold), one
  # process each; results in video.log
  py - <<'EOF'
from mcodec.codec.media_io import read_video, write_video
frames, rate = read_video("/tmp/data/video/tree.avi")
write_video("/tmp/runs/tree120.mkv", frames[:120], rate, force=True)
for g, a in enumerate(range(0, 444, 111)):
    write_video(f"/tmp/runs/tree444_g{g}.mkv", frames[a : a + 111], rate, force=True)
EOF
  local q=${VIDEO_QUALITY:-3}
  for clip in tree120 tree444_g0 tree444_g1 tree444_g2 tree444_g3; do
    (t0=$(date +%s); OMP_NUM_THREADS=3 timeout $(($(left) - 45)) python3 -m mcodec encode $RUNS/$clip.mkv \
      $RUNS/video_${clip}_q$q.mcd --preset slow --quality $q --device cuda --force > $RUNS/video_${clip}_q$q.log 2>&1
     echo "$clip q$q slow rc=$? $(($(date +%s) - t0)) s $(tail -c 300 $RUNS/video_${clip}_q$q.log | tr '\r' '\n' | tail -1)" \
      >> $RUNS/video.log) &
  done
  wait
}

start_video() {
  export -f video_jobs py left; export RUNS
  setsid nohup bash -c video_jobs > $RUNS/video_jobs.log 2>&1 < /dev/null &
  echo "video jobs started"
}

wait_call() {  # until 40 s before this call's 600 s limit
  while [ $(($(date +%s) - CALL_START)) -lt 420 ] && pgrep -f "mcodec (train|encode)" > /dev/null; do sleep 5; done
}

wait_jobs() {  # until every trainer and fit has exited (they stop themselves at the deadline)
  while pgrep -f "mcodec (train|encode)" > /dev/null || pgrep -f video_jobs > /dev/null; do
    [ $(($(date +%s) - CALL_START)) -lt 520 ] || break
    sleep 5
  done
}

gpu_encode() {  # GPU encode -> (here) CPU decode check: the same sample on cuda and on cpu
  [ -f $RUNS/meanscale.safetensors ] || return
  for q in 1 4 8; do
    for d in cuda cpu; do
      py -m mcodec encode api/samples/fruits_400x300.png $RUNS/fruits_ms_q${q}_$d.mcd --codec meanscale \
        --weights $RUNS/meanscale.safetensors --quality $q --device $d --force
    done
    cmp -s $RUNS/fruits_ms_q${q}_cuda.mcd $RUNS/fruits_ms_q${q}_cpu.mcd && echo "q$q: cuda and cpu files identical" \
      || echo "q$q: cuda and cpu files differ"
  done | tee $RUNS/gpu_encode.log
}

collect() {  # logs and results into $OUT (at most 8 files); partial exports when a run is unfinished
  py - <<'EOF'
import torch
from pathlib import Path
runs = Path("/tmp/runs")
ckpt = runs / "meanscale.run/checkpoint.pt"
if ckpt.exists() and not (runs / "meanscale.safetensors").exists():
    # the run's shape is its --init file's, the shipped model (N=96, M=192, ns=128 today), not compressai's
    # 128/192: the codec's own loader builds it, and the checkpoint's state replaces the file's
    from mcodec.codec.image.hyperprior import load_ours
    from mcodec.codec.training.export import export_checkpoint
    model = load_ours("meanscale").model
    export_checkpoint(model, ckpt, runs / "meanscale_partial.safetensors", "meanscale-partial")
ckpt = runs / "rvq.run/checkpoint.pt"
if ckpt.exists() and not (runs / "rvq.safetensors").exists():
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    half = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    torch.save({"model": half, "step": state["step"]}, runs / "rvq_partial.pt")  # fp16: under 16 MB
EOF
  cp $RUNS/meanscale.safetensors $RUNS/meanscale_partial.safetensors $RUNS/rvq.safetensors $RUNS/rvq_partial.pt \
    "$OUT"/ 2>/dev/null
  (cd $RUNS && tar czf "$OUT/results.tgz" --exclude='*.run' --exclude='*.safetensors' --exclude='*.pt' \
    --exclude='*.mkv' *.log *.mcd 2>/dev/null)
  tail -n 3 $RUNS/*.log; ls -la "$OUT"
}

for step in "$@"; do
  echo "== $step ($(($(date +%s) - CALL_START)) s into the call, $(left 2>/dev/null) s to the deadline)"
  "$step"
done
