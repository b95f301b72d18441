#!/usr/bin/env bash
# The GPU device check (`just device-check`; README "Speed, parallel runs and GPUs", Device check).
# Runs a balms binary built elsewhere on a GPU machine that has PyTorch 2.11.0 (CUDA) but no Rust
# toolchain, and writes its figures into OUTDIR (default results/device):
#   environment.txt        GPU, driver, torch, the libtorch balms loaded, CUDA really in use
#   bench-f32.{json,md}    ResNet-32 (one CIFAR-10-LT epoch) and the small CNN, balms vs the PyTorch
#                          reference on the same GPU, float32
#   bench-{bf16,cl,bf16-cl}.{json,md}   ResNet-32 again with bf16 autocast, channels-last, both
#   stage2.md              one BALMS stage 2 (and its plain Balanced Softmax + DT baseline) on
#                          Fashion-MNIST-LT IF 100: top-1 beside the committed CPU results, seconds
#   cifar-protocol.md      the CIFAR protocol for one method and seed: ResNet-32 with the official
#                          augmentation on Fashion-MNIST in CIFAR's format (bench/device_cifar.toml,
#                          13,000 iterations at CIFAR_SCALE, default 0.2 so that it fits a 10-minute
#                          command; 1 runs it unscaled), top-1, seconds, images per second
#   stage2-meta-cuda.md    the Meta Sampler's iteration cost against a plain stage-2 iteration
#                          (the stage2_meta bench binary built here, run there), both draws, two
#                          sizes; skipped with a warning when no bench binary is there
# Environment: BALMS (binary, default target/release/balms), TORCH_LIB (libtorch folder, default
# that of `python3 -c 'import torch'`), BALMS_DATA (Fashion-MNIST folder), PYTHON (default python3),
# DEVICE (cuda; `cpu` dry-runs the script with short timings and the CIFAR part at --scale 0.002),
# THREADS (default 8), PARTS (default "bench stage2 cifar meta": which parts to run; a partial run
# logs to log-<parts>.txt), BENCH (the
# stage2_meta bench binary, default the newest target/release/deps/stage2_meta-*; build it with
# `cargo bench --bench stage2_meta --no-run`).
set -euo pipefail

out=${1:-results/device}
balms=${BALMS:-target/release/balms}
python=${PYTHON:-python3}
device=${DEVICE:-cuda}
threads=${THREADS:-8}
parts=${PARTS:-bench stage2 cifar meta}
mkdir -p "$out"
log="$out/log.txt"
if [ "$parts" != "bench stage2 cifar meta" ]; then log="$out/log-${parts// /-}.txt"; fi
: >"$log"
say() { echo "$@" | tee -a "$log"; }

torch_lib=${TORCH_LIB:-$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')}
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

{
    echo "date: $(date -u +%FT%TZ)"
    echo "host: $(uname -srm), $(nproc) CPUs"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    "$python" -c 'import torch; print("python torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' || echo "python torch: not importable"
    echo "balms: $("$balms" --version)"
    echo "libtorch loaded from: $torch_lib"
    ldd "$balms" | grep -E 'torch|c10' || true
} | tee "$out/environment.txt"

if [ "$device" = cuda ]; then
    # `--device cuda` fails loudly when CUDA is not usable; the bench report then names cuda:0.
    steps=()
else
    steps=(--warmup 2 --steps 4)
fi

if [[ " $parts " == *" bench "* ]]; then
say "== bench, float32"
"$balms" bench --device "$device" --threads "$threads" --python "$python" --workers 8 \
    --workloads resnet32-cifar,cnn-fashion "${steps[@]}" --out "$out/bench-f32" 2>&1 | tee -a "$log"
grep -q "\"device\": \"$( [ "$device" = cuda ] && echo cuda:0 || echo cpu )\"" "$out/bench-f32.json"

for variant in "bf16:--precision bf16-autocast" "cl:--channels-last" "bf16-cl:--precision bf16-autocast --channels-last"; do
    name=${variant%%:*}
    say "== bench, ResNet-32, $name"
    # shellcheck disable=SC2086
    "$balms" bench --device "$device" --threads "$threads" --python "$python" --workers 8 \
        --workloads resnet32-cifar "${steps[@]}" ${variant#*:} --out "$out/bench-$name" 2>&1 | tee -a "$log"
done
fi

if [[ " $parts " == *" stage2 "* ]]; then
say "== one BALMS stage 2"
results=$(mktemp -d)
"$balms" run bench/device_check.toml --device "$device" --threads "$threads" --no-progress \
    --results "$results" 2>&1 | tee -a "$log"
"$python" - "$results/device-check" results/fashion-mnist-lt-table5 "$device" >"$out/stage2.md" <<'EOF'
import json, pathlib, sys

runs, committed, device = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
print(f"# One BALMS stage 2 on {device} (Fashion-MNIST-LT IF 100, seed 1)\n")
print("| run | top-1 here | top-1 committed (CPU) | difference | seconds | iterations |")
print("|---|---:|---:|---:|---:|---:|")
for run in ("softmax", "balanced-softmax-dt", "balms", "balanced-softmax-dt-per-batch", "balms-per-batch"):
    cell = f"fashion-mnist-lt.if100.{run}/seed-1"
    here = json.loads((runs / cell / "metrics.json").read_text())
    ours = here["top1"] * 100
    end = [json.loads(l) for l in (runs / cell / "log.jsonl").read_text().splitlines()]
    seconds = next(e["seconds"] for e in end if e["type"] == "end")
    cpu = committed / cell / "metrics.json"
    theirs = json.loads(cpu.read_text())["top1"] * 100 if cpu.exists() else float("nan")
    print(f"| {run} | {ours:.2f} | {theirs:.2f} | {ours - theirs:+.2f} | {seconds:.1f} | {here['iterations']} |")
print("\n`-per-batch`: stage-2 features through the frozen backbone for every batch, as the official")
print("code computes them; no committed CPU run exists for those.")
config = json.loads((runs / "fashion-mnist-lt.if100.balms/seed-1/config.json").read_text())
print(f"\nprovenance: {json.dumps(config['provenance'])}")
EOF
cat "$out/stage2.md" | tee -a "$log"
rm -rf "$results"
fi
if [[ " $parts " == *" cifar "* ]]; then
say "== the CIFAR protocol: Softmax, seed 1, Fashion-MNIST in CIFAR's format, IF 100"
data=$(mktemp -d)
"$balms" cifar-tree --out "$data/fashion-mnist-cifar" ${BALMS_DATA:+--data-dir "$BALMS_DATA"} 2>&1 | tee -a "$log"
results=$(mktemp -d)
scale=(--scale "${CIFAR_SCALE:-0.2}")
if [ "$device" != cuda ]; then scale=(--scale 0.002); fi
if [ "${scale[1]}" = 1 ]; then scale=(); fi
"$balms" run bench/device_cifar.toml --device "$device" --threads "$threads" --no-progress \
    --data-dir "$data" --results "$results" "${scale[@]}" 2>&1 | tee -a "$log"
"$python" - "$results" "$device" >"$out/cifar-protocol.md" <<'EOF'
import json, pathlib, sys

results, device = pathlib.Path(sys.argv[1]), sys.argv[2]
run = next(results.glob("device-cifar*/fashion-mnist-cifar-lt.if100.softmax/seed-1"))
metrics = json.loads((run / "metrics.json").read_text())
config = json.loads((run / "config.json").read_text())
end = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines()]
seconds = next(e["seconds"] for e in end if e["type"] == "end")
images = metrics["iterations"] * 512
print(f"# The CIFAR protocol on {device}: Softmax, seed 1 (Fashion-MNIST in CIFAR's format, IF 100)\n")
print("| matrix | iterations | top-1 | seconds | training images per second |")
print("|---|---:|---:|---:|---:|")
print(f"| {config['matrix']} | {metrics['iterations']} | {metrics['top1'] * 100:.2f} | {seconds:.1f} | {images / seconds:.0f} |")
print("\nThe seconds include loading, augmentation (on the CPU), training and the test evaluation.")
print(f"\nprovenance: {json.dumps(config['provenance'])}")
EOF
cat "$out/cifar-protocol.md" | tee -a "$log"
rm -rf "$results" "$data"
fi
if [[ " $parts " == *" meta "* ]]; then
say "== the Meta Sampler's iteration cost"
bench=${BENCH:-$(find target/release/deps -maxdepth 1 -type f -executable -name 'stage2_meta-*' -printf '%T@ %p\n' 2>/dev/null | sort -n | tail -1 | cut -d' ' -f2 || true)}
if [ -n "$bench" ] && [ -x "$bench" ]; then
    BALMS_BENCH_DEVICE="$device" BALMS_BENCH_THREADS="$threads" BALMS_BENCH_OUT="$out" "$bench" --bench 2>&1 | tee -a "$log"
else
    say "WARNING: no stage2_meta bench binary, part skipped: build it with 'cargo bench --bench stage2_meta --no-run' and pass BENCH=<path>"
fi
fi
say "device check finished: $out"
