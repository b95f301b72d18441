"""PyTorch reference for `balms bench`: the same workloads, written the way the official code is.

Data comes from the `.npy` files balms writes (identical inputs); the models are the same
architectures with PyTorch's own layers; training is the usual loop over a shuffled `DataLoader`
with SGD (lr 0.1, momentum 0.9, weight decay 5e-4) and softmax cross-entropy, taking
`loss.item()` every iteration as the official CIFAR code (LDAM-DRW's `train`) does for its
running average. The CIFAR-shaped workload goes through PIL and torchvision transforms per image
(RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize), as the official CIFAR
dataset class does. Prints one JSON object on its last line.
"""

import argparse
import json
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)


class Mlp(nn.Module):
    def __init__(self, inputs, classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.Flatten(), nn.Linear(inputs, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU()
        )
        self.fc = nn.Linear(256, classes)

    def forward(self, x):
        return self.fc(self.features(x))


class SmallCnn(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
        )
        self.fc = nn.Linear(128, classes)

    def forward(self, x):
        return self.fc(self.features(x))


class BasicBlock(nn.Module):
    """Idelbayev's `resnet_cifar` block with option-A shortcuts (the official CIFAR backbone)."""

    def __init__(self, inputs, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = planes // 4 if stride != 1 or inputs != planes else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.pad is None:
            shortcut = x
        else:
            shortcut = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + shortcut)


class Resnet32(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, inputs = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(5):
                layers.append(BasicBlock(inputs, planes, stride if i == 0 else 1))
                inputs = planes
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


class CifarImages(torch.utils.data.Dataset):
    """uint8 HWC images through PIL and torchvision transforms, one image at a time."""

    def __init__(self, images, labels):
        import torchvision.transforms as T

        self.images, self.labels = images, labels
        self.transform = T.Compose([
            T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
            T.Normalize(CIFAR_MEAN, CIFAR_STD),
        ])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def build(workload, x, y, classes):
    if workload == "mlp-digits":
        data = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
        return data, Mlp(int(np.prod(x.shape[1:])), classes)
    if workload == "cnn-fashion":
        data = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
        return data, SmallCnn(classes)
    if workload == "resnet32-cifar":
        return CifarImages(x, y), Resnet32(classes)
    raise SystemExit(f"unknown workload {workload}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--precision", default="f32")
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    x = np.load(f"{args.data}/x.npy")
    y = np.load(f"{args.data}/y.npy")
    data, model = build(args.workload, x, y, int(y.max()) + 1)
    model = model.to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    loader = torch.utils.data.DataLoader(
        data, batch_size=args.batch, shuffle=True, num_workers=args.workers,
        pin_memory=device.type == "cuda", persistent_workers=args.workers > 0,
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    criterion = nn.CrossEntropyLoss()
    autocast = args.precision == "bf16-autocast"
    model.train()

    done, started = 0, None
    total = args.warmup + args.steps
    while done < total:
        for inputs, targets in loader:
            if done == args.warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                started = time.perf_counter()
            inputs = inputs.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            if args.channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                logits = model(inputs)
            loss = criterion(logits.float(), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()
            done += 1
            if done == total:
                break
    elapsed = time.perf_counter() - started
    print(json.dumps({
        "images_per_second": args.steps * args.batch / elapsed,
        "seconds_per_iteration": elapsed / args.steps,
        "torch": torch.__version__,
        "device_name": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "workers": args.workers,
    }))


if __name__ == "__main__":
    main()
