#!/bin/sh
# Runs the full-size random-weight benchmarks one after another (each in its own process, so each
# peak RSS is its own), under `nice -n 5`, printing `uptime` before and after each run.
#
#   tools/bench/run_full_size.sh WEIGHTS_DIR [LOG] [RUN...]
#
# WEIGHTS_DIR is laid out as the reference's downloader leaves it (docs/benchmarks.md says how to
# make it); RUN names pick runs (default: all, in this order):
#   flux-fp8-512 flux-fp8-256 flux-bf16-256 flux-bf16-512 vae encoders
#   pipeline-fp8-256 pipeline-fp8-512 pipeline-bf16-256 pipeline-bf16-512
set -u
weights=${1:?usage: run_full_size.sh WEIGHTS_DIR [LOG] [RUN...]}
log=${2:-full-size-bench.log}
[ $# -ge 2 ] && shift 2 || shift $#
runs=${*:-flux-fp8-512 flux-fp8-256 flux-bf16-256 flux-bf16-512 vae encoders pipeline-fp8-256 pipeline-fp8-512 pipeline-bf16-256 pipeline-bf16-512}
bench=$(dirname "$0")/../../.build/release/uso-bench

for run in $runs; do
    case $run in
        flux-fp8-512) set -- flux --weights "$weights/FLUX.1-dev" --fp8 --size 512 ;;
        flux-fp8-256) set -- flux --weights "$weights/FLUX.1-dev" --fp8 --size 256 ;;
        flux-bf16-256) set -- flux --weights "$weights/FLUX.1-dev" --size 256 ;;
        flux-bf16-512) set -- flux --weights "$weights/FLUX.1-dev" --size 512 ;;
        vae) set -- vae --weights "$weights/FLUX.1-dev/ae.safetensors" ;;
        encoders) set -- encoders --weights "$weights" ;;
        pipeline-fp8-256) set -- pipeline --model-dir "$weights" --size 256 --steps 2 --model-type flux-dev-fp8 ;;
        pipeline-fp8-512) set -- pipeline --model-dir "$weights" --size 512 --steps 2 --model-type flux-dev-fp8 ;;
        pipeline-bf16-256) set -- pipeline --model-dir "$weights" --size 256 --steps 2 ;;
        pipeline-bf16-512) set -- pipeline --model-dir "$weights" --size 512 --steps 2 ;;
        *) echo "unknown run $run" >&2; exit 64 ;;
    esac
    {
        echo "== $run: uso-bench $*"
        echo "uptime before: $(uptime)"
        nice -n 5 "$bench" "$@" 2>&1
        echo "exit $?"
        echo "uptime after: $(uptime)"
    } | tee -a "$log"
done
