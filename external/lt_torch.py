"""Long-tailed recognition methods in plain PyTorch, as balms external methods.

Written from the paper and the official code's behaviour (../shared/reference/paper-facts.md),
not ported from balms, so that a balms matrix can compare the two implementations on the same
subsets and seeds (README, "External methods" and "Cross-checked against PyTorch").

    python external/lt_torch.py --run <run.json> --out <folder>

The method comes from run.json's settings:

- end to end: a backbone and a linear classifier (torch's default initialisation; ResNet-32's
  convolutions Kaiming-normal, as the official code's). The backbones
  are balms's, written here with torch's modules: `mlp` (ReLU after each hidden layer),
  `small-cnn` and `resnet32` (batch norm: training mode while training, eval mode after). The
  model is trained with Softmax cross-entropy or Balanced Softmax (cross-entropy of
  `logits + exponent * log n_j`; raw logits at test time), instance-balanced batches from a
  seeded `DataLoader`, SGD (momentum, weight decay on every parameter), a linear warm-up then
  cosine to 0, stepped every iteration;
- decoupled (stage 2): the stage-1 backbone frozen (its features computed once, in eval mode), a
  fresh linear classifier trained with Softmax or Balanced Softmax, on instance-balanced batches
  (DT) or class-aware ones (cRT: Kang et al.'s `ClassAwareSampler`, 4 images per class visit),
  cosine to 0 from the start;
- BALMS's stage 2 (`sampler = "meta"`): the Meta Sampler as the official code runs it. Per-class
  rates `sigmoid(phi_c)`; each batch row a straight-through Gumbel-softmax (`F.gumbel_softmax`,
  hard) over every training image with logits `log sigmoid(phi_c)`; a one-step look-ahead of the
  classifier (SGD with the real optimiser's momentum buffers and weight decay, written out
  functionally) on the batch loss weighted by the hard-minus-soft-plus-soft selection; the
  cross-entropy of the looked-ahead classifier on a class-balanced meta batch from the training
  set; an Adam step on `phi`; then the real SGD step on the plain batch loss.

The run reports its test and validation predictions, p(y) on the test set and the Python files
it ran (`sources`), as contract 2 asks.

Anything else in the settings (another model, loss, sampler, augmentation, selection rule,
precision) is refused with a message, rather than silently run differently.
"""

import argparse
import json
import math
import os
import platform
import sys

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Sampler, TensorDataset


def refuse(message):
    print(f"lt_torch.py: {message}", file=sys.stderr)
    sys.exit(2)


def torch_seed(value):
    """A 64-bit seed from run.json as torch takes it."""
    return value % (2**63)


def loss_of(spec, counts, reduction="mean"):
    """Softmax cross-entropy, or Balanced Softmax with its exponent on the prior."""
    if spec == "softmax":
        return nn.CrossEntropyLoss(reduction=reduction)
    if isinstance(spec, dict) and "balanced-softmax" in spec:
        exponent = spec["balanced-softmax"].get("exponent", 1.0)
        log_prior = exponent * torch.log(torch.tensor(counts, dtype=torch.float32))
        cross_entropy = nn.CrossEntropyLoss(reduction=reduction)
        return lambda logits, y: cross_entropy(logits + log_prior, y)
    if spec == "balanced-softmax":
        return loss_of({"balanced-softmax": {}}, counts, reduction)
    refuse(f"loss {spec!r} is not implemented here")


class SmallCnn(nn.Module):
    """balms's `small-cnn` for 1x28x28 images: two conv(3x3, padding 1)-BN-ReLU-maxpool(2)
    blocks of 32 and 64 channels, then a 128-unit ReLU layer; torch's default initialisation."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32)
        self.conv2, self.bn2 = nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64)
        self.fc = nn.Linear(64 * 7 * 7, 128)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return F.relu(self.fc(x.flatten(1)))


class BasicBlock(nn.Module):
    """ResNet-32's block: two conv(3x3)-BN, ReLU between and after the sum; where the shape
    changes, the shortcut takes every other pixel and zero-pads the channels (option A)."""

    def __init__(self, inputs, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = planes // 4 if stride != 1 or inputs != planes else None

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.pad is None else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + shortcut)


class Resnet32(nn.Module):
    """ResNet-32 for CIFAR as the official code takes it (Idelbayev's `resnet_cifar`, its
    `ResNet32Feature`): conv(3x3, 16)-BN-ReLU, three stages of 5 blocks (16, 32, 64 channels;
    strides 1, 2, 2), global average pooling to 64 features; Kaiming-normal convolutions."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        inputs, stages = 16, []
        for planes, stride in [(16, 1), (32, 2), (64, 2)]:
            blocks = []
            for b in range(5):
                blocks.append(BasicBlock(inputs, planes, stride if b == 0 else 1))
                inputs = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


def backbone_of(spec, input_shape):
    """The backbone a matrix's `model` names, and its feature width."""
    if isinstance(spec, dict) and "mlp" in spec:
        layers, width = [nn.Flatten()], int(np.prod(input_shape))
        for hidden in spec["mlp"]["hidden"]:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        return nn.Sequential(*layers), width
    if spec == "small-cnn":
        return SmallCnn(), 128
    if spec == "resnet32":
        return Resnet32(input_shape[0]), 64
    refuse(f"model {spec!r} is not implemented here (mlp, small-cnn, resnet32)")


def in_chunks(function, x, size=1000):
    """`function` of `x`, 1,000 rows at a time (a CNN's activations over a whole test set do not
    fit in memory at once)."""
    return torch.cat([function(x[i : i + size]) for i in range(0, len(x), size)])


def sources():
    """The Python files of this run that live outside the interpreter's installation (this script,
    a script that imports it): balms records their SHA-256."""
    prefixes = tuple(os.path.realpath(p) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix})
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        # (Some modules' `__file__` is a bare name, e.g. `torch._classes`: not a file.)
        if path and path.endswith(".py") and os.path.isabs(path) and os.path.isfile(path):
            real = os.path.realpath(path)
            if not real.startswith(prefixes) and "site-packages" not in real:
                files.add(real)
    return sorted(files)


def schedule(optimizer, total, warmup, start_factor):
    """Linear warm-up from `start_factor` over `warmup` iterations, then cosine to 0."""

    def factor(t):
        if t < warmup:
            return start_factor + (1.0 - start_factor) * t / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (t - warmup) / max(total - warmup, 1)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def sgd(parameters, o):
    return torch.optim.SGD(
        parameters,
        lr=o["lr"],
        momentum=o["momentum"],
        weight_decay=o["weight-decay"],
        nesterov=o["nesterov"],
    )


class ClassAware(Sampler):
    """Class-aware sampling (Kang et al.'s `ClassAwareSampler`, `num_samples_cls = 4`): classes
    visited in shuffled cycles, 4 images per visit, each class's images in shuffled cycles; an
    epoch is as long as the training set."""

    def __init__(self, labels, classes, generator, per_visit=4, endless=False):
        self.by_class = [np.flatnonzero(labels == c) for c in range(classes)]
        self.generator = generator
        self.per_visit = per_visit
        self.length = sys.maxsize if endless else len(labels)
        # The cycles persist from epoch to epoch, as the official sampler's `RandomCycleIter`s.
        self.classes = self._cycle(list(range(classes)))
        self.members = [self._cycle(list(m)) for m in self.by_class]

    def _cycle(self, items):
        while True:
            order = torch.randperm(len(items), generator=self.generator).tolist()
            for i in order:
                yield items[i]

    def __iter__(self):
        produced = 0
        while produced < self.length:
            c = next(self.classes)
            for _ in range(min(self.per_visit, self.length - produced)):
                yield int(next(self.members[c]))
                produced += 1

    def __len__(self):
        return self.length


def batches(x, y, batch, sampler_spec, classes, generator):
    dataset = TensorDataset(x, y)
    if sampler_spec == "instance":
        return DataLoader(dataset, batch_size=batch, shuffle=True, generator=generator)
    if sampler_spec == "class-balanced":
        sampler = ClassAware(y.numpy(), classes, generator)
        return DataLoader(dataset, batch_size=batch, sampler=sampler)
    refuse(f"sampler {sampler_spec!r} is not implemented here")


def train(model, loss, loader, optimizer, scheduler, total):
    """`total` SGD steps over whole epochs of `loader`, the last one cut; returns the mean loss
    of the last epoch (stage 2: of the last 100 steps) and the steps run."""
    step, recent = 0, []
    while step < total:
        for xb, yb in loader:
            if step == total:
                break
            value = loss(model(xb), yb)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
            scheduler.step()
            recent.append(value.item())
            step += 1
    return float(np.mean(recent[-100:])), step


class GumbelRows:
    """Rows of `F.gumbel_softmax(log_rates[labels], tau, hard=True)` over every training image:
    each row's selected image and its straight-through weight `hard * hard` (value 1, the
    gradient of the soft value at the selection), as the official `forward_loss` uses them.

    Computed without a `[batch, N]` autograd graph. With Gumbel noise `g = -log E`, `E`
    exponential, the soft value at image `i` is `exp((l_c(i) + g_i) / tau) / sum_j exp((l_c(j) +
    g_j) / tau)`; the denominator groups by class as `sum_c exp(l_c / tau) S_c` with `S_c =
    sum_{j in c} E_j^(-1 / tau)`, and the selection, the largest `l_c(j) + g_j`, is per class the
    smallest `E_j`. So the noise is drawn class by class (images sorted by class once; the same
    i.i.d. draws in another order, `E = -log U`), and only `C` numbers per row carry gradient. With `check`, the
    value and gradient are compared with the literal computation on the same noise.
    """

    def __init__(self, labels, classes):
        self.order = torch.argsort(labels, stable=True)
        counts = torch.bincount(labels, minlength=classes).tolist()
        self.spans = []
        start = 0
        for c in counts:
            self.spans.append((start, start + c))
            start += c
        self.labels = labels

    def __call__(self, log_rates, batch, tau, check=False):
        n = len(self.labels)
        with torch.no_grad():
            # Exponentials by inversion (torch's `exponential_` is several times slower on CPU).
            exponential = torch.rand(batch, n).log_().neg_()
            # Per class: the smallest E (the class's best image) and the sum of E^(-1/tau).
            minima, positions, sums = [], [], []
            for a, b in self.spans:
                block = exponential[:, a:b]
                smallest, where = block.min(1)
                minima.append(smallest)
                positions.append(where + a)
                # log S_c: for tau = 1 the sum of reciprocals; otherwise a log-sum-exp of
                # -log(E) / tau, which E^(-1/tau) would overflow at small tau.
                if tau == 1.0:
                    sums.append(block.reciprocal().sum(1).log())
                else:
                    sums.append(torch.logsumexp(-block.log() / tau, dim=1))
            minima, positions, log_sums = torch.stack(minima, 1), torch.stack(positions, 1), torch.stack(sums, 1)
            # The row's winner: the largest l_c - log(min E_c).
            winner = (log_rates.detach()[None, :] - minima.log()).argmax(1)
            rows = torch.arange(batch)
            index = self.order[positions[rows, winner]]
            g = -minima[rows, winner].log()
        numerator = (log_rates[winner] + g) / tau
        log_denominator = torch.logsumexp(log_rates / tau + log_sums, dim=1)
        soft = (numerator - log_denominator).exp()
        scale = 1.0 - soft.detach() + soft
        if check:
            noise = torch.empty(batch, n)
            noise[:, self.order] = -exponential.log()
            full = ((log_rates[self.labels].expand(batch, -1) + noise) / tau).softmax(-1)
            # The selection is a row's largest value (exact ties between images of equal rates
            # may pick another image of the same value).
            chosen = full.detach().gather(1, index[:, None])[:, 0]
            assert torch.equal(chosen, full.detach().max(1).values), "Gumbel rows: selections differ"
            hard = torch.zeros_like(full).scatter_(1, index[:, None], 1.0)
            straight = hard - full.detach() + full
            reference = (straight.detach() * straight).sum(1)
            ours = torch.autograd.grad(scale.sum(), log_rates, retain_graph=True)[0]
            theirs = torch.autograd.grad(reference.sum(), log_rates, retain_graph=True)[0]
            assert torch.allclose(scale, reference, atol=1e-5), "Gumbel rows: values differ"
            assert torch.allclose(ours, theirs, atol=1e-4, rtol=1e-3), "Gumbel rows: gradients differ"
        return index, scale


def meta_stage2(s, features, labels, counts, classes, generator):
    """BALMS's stage 2 with the Meta Sampler; returns the classifier, the mean loss of the last
    100 steps, the steps run and the rates after each tenth of them."""
    spec = s["sampler"]["meta"]
    if spec.get("draw", "exact") != "exact" or spec["meta-set"] != "train":
        refuse("the Meta Sampler here draws exactly, with meta batches from the training set")
    if s["optimizer"]["nesterov"]:
        refuse("the Meta Sampler's look-ahead here takes plain momentum (nesterov = false)")
    counts_t = torch.tensor(counts, dtype=torch.float64)
    start = 1.0 / (counts_t / counts_t.sum()) ** spec["init-pow"]
    start = start / (start.min() + start.max())
    phi = torch.log(start / (1.0 - start)).float().requires_grad_(True)
    meta_optimizer = torch.optim.Adam([phi], lr=spec["lr"], betas=tuple(spec["betas"]))
    width = features.shape[1]
    classifier = nn.Linear(width, classes)
    optimizer = sgd(classifier.parameters(), s["optimizer"])
    o = s["optimizer"]
    total, batch = s["iterations"], s["batch-size"]
    scheduler = schedule(optimizer, total, 0, 1.0)
    loss = loss_of(s["loss"], counts)
    per_sample = loss_of(s["loss"], counts, reduction="none")
    meta_order = iter(DataLoader(TensorDataset(features, labels), batch_size=spec["meta-batch"],
                                 sampler=ClassAware(labels.numpy(), classes, generator, per_visit=1, endless=True)))
    gumbel_rows = GumbelRows(labels, classes)
    recent, rates = [], []
    every = max(total // 10, 1)
    for step in range(total):
        lr = optimizer.param_groups[0]["lr"]
        # (1) a batch from the Gumbel-softmax over every image, its rows' soft selections.
        index, scale = gumbel_rows(F.logsigmoid(phi), batch, spec["temperature"], check=step == 0)
        x, y = features[index], labels[index]
        # (2) the look-ahead: one SGD step of the classifier, functional in phi.
        weight, bias = classifier.weight, classifier.bias
        terms = per_sample(F.linear(x, weight, bias), y)
        grads = torch.autograd.grad((terms * scale).mean(), (weight, bias), create_graph=True)
        ahead = []
        for p, g in zip((weight, bias), grads):
            g = g + o["weight-decay"] * p
            buffer = optimizer.state.get(p, {}).get("momentum_buffer")
            if o["momentum"] > 0:
                g = g if buffer is None else o["momentum"] * buffer + g
            ahead.append(p - lr * g)
        # (3) the meta loss on a class-balanced meta batch, and Adam on phi.
        meta_x, meta_y = next(meta_order)
        meta_loss = F.cross_entropy(F.linear(meta_x, *ahead), meta_y)
        meta_optimizer.zero_grad()
        phi.grad = torch.autograd.grad(meta_loss, phi)[0]
        meta_optimizer.step()
        # (4) the real step on the plain loss.
        value = loss(classifier(x), y)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        scheduler.step()
        recent.append(value.item())
        if (step + 1) % every == 0:
            rates.append(torch.sigmoid(phi).detach().double().tolist())
    return classifier, float(np.mean(recent[-100:])), total, rates


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    run = json.load(open(args.run))
    if run["contract"] != 2:
        refuse(f"contract {run['contract']} (this script reads contract 2)")
    torch.set_num_threads(run["threads"])
    if run["device"] != "cpu":
        refuse(f"device {run['device']} (this script runs on the CPU)")
    data = np.load(run["data"])
    tensors = {k: torch.from_numpy(data[k]) for k in data.files}
    counts = run["dataset"]["class-counts"]
    classes = run["dataset"]["classes"]
    method = run["method"]
    scheme = method["scheme"]
    generator = torch.Generator().manual_seed(torch_seed(run["seeds"]["order"]))
    torch.manual_seed(torch_seed(run["seeds"]["init"]))
    input_shape = run["dataset"]["input-shape"]

    if "end-to-end" in scheme:
        s = scheme["end-to-end"]
        for field, value in [("classifier", "linear"), ("drw", None), ("augment", "none"), ("selection", "last")]:
            if s.get(field) != value:
                refuse(f"`{field}` = {s.get(field)!r} is not implemented here")
        if s.get("precision", "f32") != "f32" or s.get("schedule", {}).get("stepping", "iteration") != "iteration":
            refuse("only f32 and per-iteration stepping are implemented here")
        backbone, width = backbone_of(s["model"], input_shape)
        model = nn.Sequential(backbone, nn.Linear(width, classes))
        n, batch = len(tensors["train_y"]), s["batch-size"]
        per_epoch = math.ceil(n / batch)
        length = s["length"]
        total = round(length["epochs"] * per_epoch) if "epochs" in length else length["iterations"]
        warmup = s["schedule"]["warmup"]
        warmup = round(warmup["epochs"] * per_epoch) if "epochs" in warmup else warmup["iterations"]
        loader = batches(tensors["train_x"], tensors["train_y"], batch, s["sampler"], classes, generator)
        optimizer = sgd(model.parameters(), s["optimizer"])
        scheduler = schedule(optimizer, total, warmup, s["schedule"]["warmup-start-factor"])
        model.train()
        final_loss, steps = train(model, loss_of(s["loss"], counts), loader, optimizer, scheduler, total)
        torch.save({"backbone": backbone.state_dict(), "width": width, "model": s["model"]}, os.path.join(args.out, "model.pt"))
    else:
        s = scheme["decoupled"]
        if s["classifier"] != "retrain" or s["selection"] != "last" or s.get("features", "cached") != "cached":
            refuse("only `retrain` with `selection = \"last\"` on cached features is implemented here")
        if s.get("stepping", "iteration") != "iteration":
            refuse("only per-iteration stepping is implemented here")
        saved = torch.load(os.path.join(run["stage1"]["out"], "model.pt"))
        backbone, width = backbone_of(saved["model"], input_shape)
        backbone.load_state_dict(saved["backbone"])
        backbone.eval()
        with torch.no_grad():
            features = {k: in_chunks(backbone, tensors[f"{k}_x"]) for k in ["train", "val", "test"]}
        rates = None
        if isinstance(s["sampler"], dict) and "meta" in s["sampler"]:
            classifier, final_loss, steps, rates = meta_stage2(
                s, features["train"], tensors["train_y"], counts, classes, generator
            )
        else:
            classifier = nn.Linear(width, classes)
            loader = batches(features["train"], tensors["train_y"], s["batch-size"], s["sampler"], classes, generator)
            optimizer = sgd(classifier.parameters(), s["optimizer"])
            total = s["iterations"]
            scheduler = schedule(optimizer, total, 0, 1.0)
            final_loss, steps = train(classifier, loss_of(s["loss"], counts), loader, optimizer, scheduler, total)
        model = classifier
        tensors = {**tensors, "val_x": features["val"], "test_x": features["test"]}

    model.eval()
    with torch.no_grad():
        test_logits = in_chunks(model, tensors["test_x"]).double()
        val_predictions = in_chunks(model, tensors["val_x"]).argmax(1)
    metrics = {
        "test-predictions": test_logits.argmax(1).tolist(),
        "validation-predictions": val_predictions.tolist(),
        "marginal-likelihood": test_logits.softmax(1).mean(0).tolist(),
        "iterations": steps,
        "final-train-loss": final_loss,
        "environment": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
        "sources": sources(),
    }
    if "decoupled" in scheme and rates is not None:
        metrics["meta-rates"] = rates
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f)


if __name__ == "__main__":
    main()
