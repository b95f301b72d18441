# balms: every recipe wraps the `balms` binary or cargo; nothing here the CLI cannot do.
# `just reproduce` and `just test` do all set-up on a fresh machine (see README).

set shell := ["bash", "-euo", "pipefail", "-c"]

bin := "./target/release/balms"

# List recipes.
default:
    @just --list

# Repo-local libtorch: PyTorch 2.11.0 from PyPI in .venv (full install where nvidia-smi works,
# CPU-minimal otherwise); `.libtorch` links to its torch folder (see .cargo/config.toml).
setup:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ -e .libtorch/lib/libtorch_cpu.so ]; then exit 0; fi
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
        echo "NVIDIA GPU found: installing the full PyTorch 2.11.0 (CUDA)"
        .venv/bin/python -m pip install -q torch==2.11.0
    else
        echo "no NVIDIA GPU: installing the CPU-minimal PyTorch 2.11.0 libraries"
        .venv/bin/python -m pip install -q --no-deps torch==2.11.0 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85
    fi
    ln -sfn "$(ls -d "$PWD"/.venv/lib/python3*/site-packages/torch)" .libtorch
    test -e .libtorch/lib/libtorch_cpu.so

# Fashion-MNIST from Debian's `dataset-fashion-mnist` when missing (needs root and apt);
# otherwise say how to get it. The digits matrix needs nothing.
data:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ -e /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] || [ -n "${BALMS_DATA:-}" ]; then exit 0; fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq --no-install-recommends dataset-fashion-mnist
    else
        echo "Fashion-MNIST missing: run 'sudo apt-get install dataset-fashion-mnist' or set BALMS_DATA (see README)" >&2
    fi

# The PyTorch reference's environment (full torch 2.11.0 + torchvision 0.26.0 from PyPI, about
# 4.6 GB, in .venv-ref; git-ignored): `just bench`'s reference, the tests that compare
# converted torchvision ResNets and the image transforms with PyTorch, the PyTorch twins
# (external/lt_torch.py), and the official LVIS API that scores Table 4.
bench-setup:
    #!/usr/bin/env bash
    set -euo pipefail
    if .venv-ref/bin/python -c 'import torch, torchvision, lvis, pycocotools' 2>/dev/null; then exit 0; fi
    [ -x .venv-ref/bin/python ] || python3 -m venv .venv-ref
    .venv-ref/bin/python -m pip install -q --upgrade pip
    .venv-ref/bin/python -m pip install -q torch==2.11.0 torchvision==0.26.0
    # The official LVIS API (external/lvis_eval.py, Table 4's evaluator). Its wheel declares the
    # GUI build of OpenCV, which only its plotting module imports: the headless build stands in.
    .venv-ref/bin/python -m pip install -q --no-deps lvis==0.5.3
    .venv-ref/bin/python -m pip install -q pycocotools==2.0.11 matplotlib==3.11.2 opencv-python-headless==5.0.0.93

# Benchmarks, all reported as ratios measured in the same invocation (README "Speed, parallel runs
# and GPUs"): balms vs the PyTorch reference on identical data (results/bench/cpu.*), matrix
# throughput at 1 and 2 jobs (results/bench/throughput.*), and the Meta Sampler's cost over a plain
# stage 2.
bench: bench-setup build data
    {{bin}} bench --python .venv-ref/bin/python --out results/bench/cpu
    {{bin}} bench --python .venv-ref/bin/python --channels-last --workloads cnn-fashion,resnet32-cifar --out results/bench/cpu-channels-last
    {{bin}} bench --python .venv-ref/bin/python --precision bf16-autocast --workloads resnet32-cifar --out results/bench/cpu-bf16
    {{bin}} bench --python .venv-ref/bin/python --precision bf16-autocast --channels-last --workloads resnet32-cifar --out results/bench/cpu-bf16-channels-last
    {{bin}} bench --throughput bench/throughput.toml --out results/bench/throughput
    {{bin}} bench-decode --python .venv-ref/bin/python --out results/bench/decode
    {{bin}} bench-augment --python .venv-ref/bin/python --out results/bench/augment
    cargo bench --bench stage2_meta

# On a GPU machine with PyTorch 2.11.0 (CUDA) and a balms binary built elsewhere: the device check
# (scripts/device-check.sh; results/device/).
device-check:
    scripts/device-check.sh results/device

# Release build of balms.
build: setup
    cargo build --release

# Fashion-MNIST-LT as a JPEG tree with ImageNet-LT-format lists (data/fashion-mnist-lt-jpeg, for
# experiments/fashion_mnist_lt_jpeg.toml); skipped without Fashion-MNIST.
jpeg-tree: build
    #!/usr/bin/env bash
    set -euo pipefail
    if [ -e data/fashion-mnist-lt-jpeg/FashionMNIST_LT_test.txt ]; then exit 0; fi
    {{bin}} jpeg-tree --out data/fashion-mnist-lt-jpeg || echo "no JPEG tree: Fashion-MNIST is missing (see \`just data\`)" >&2

# Fashion-MNIST in CIFAR-10's binary layout for the CIFAR-protocol stand-in (`fashion-mnist-cifar-lt`).
cifar-tree: build
    #!/usr/bin/env bash
    set -euo pipefail
    if [ -e data/fashion-mnist-cifar/cifar-10-batches-bin/test_batch.bin ]; then exit 0; fi
    {{bin}} cifar-tree --out data/fashion-mnist-cifar || echo "no CIFAR-format tree: Fashion-MNIST is missing (see \`just data\`)" >&2

# Run every matrix whose data is present (reusing finished runs in results/), regenerate paper/.
reproduce *ARGS: data build jpeg-tree cifar-tree
    {{bin}} reproduce {{ARGS}}

# Recompute everything in scratch/ and report where it differs from results/.
reproduce-from-scratch: data build jpeg-tree cifar-tree
    rm -rf scratch
    {{bin}} reproduce --scratch scratch

# After adding a registered name: rewrite the README's listing from `balms list` (a test compares).
readme-listing: build
    #!/usr/bin/env python3
    import subprocess
    listing = subprocess.run(["{{bin}}", "list"], check=True, capture_output=True, text=True).stdout
    text = open("README.md").read()
    start = text.index("```text\n", text.index("generated from the registries")) + len("```text\n")
    end = text.index("```", start)
    open("README.md", "w").write(text[:start] + listing + text[end:])

# Print the resolved plan of a matrix.
plan FILE: build
    {{bin}} plan {{FILE}}

# Run one matrix (resumable).
run FILE *ARGS: build
    {{bin}} run {{FILE}} {{ARGS}}

# Regenerate paper/ from results/ for every matrix (reporting is light: a debug build will do).
paper: setup
    cargo run --quiet -- report experiments/*.toml

# Fail if paper/ differs from what results/ regenerate (changed or new files alike).
check-paper: paper
    #!/usr/bin/env bash
    set -euo pipefail
    changes=$(git status --porcelain -- paper/)
    if [ -n "$changes" ]; then
        echo "paper/ is not what the committed results/ regenerate:" >&2
        echo "$changes" >&2
        git --no-pager diff -- paper/ >&2
        exit 1
    fi

# The theory checks (Theorem 1, margins, over-balance, the toy of Figure 5) into paper/theory/.
theory: setup
    cargo run --quiet -- theory

# Rerun the embedded digits matrix from scratch and compare every run with the committed
# results (within 0.5 top-1 points per run, for other CPUs' kernels); fails with a per-run list.
check-results: setup
    cargo run --quiet -- check experiments/digits_lt.toml --device cpu --threads 2 --no-progress --tolerance 0.5

# Every test (unit, integration, snapshots, doc tests); snapshots are checked, never rewritten.
test: setup data bench-setup
    INSTA_UPDATE=no cargo test

# Formatting and lints.
lint: setup
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings
