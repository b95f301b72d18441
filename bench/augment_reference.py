"""The official CIFAR-LT training transform in PyTorch + PIL, timed for `balms bench-augment`.

    python augment_reference.py --images images.u8 --count N --workers 0 --passes 3

IMAGES holds N 32 x 32 RGB images (row-major, channels interleaved). The transform is the
official code's (`data/ImbalanceCIFAR.py`): RandomCrop(32, padding=4), RandomHorizontalFlip,
the CIFAR-10 AutoAugment policy (DeepVoltaire's port, with the operations of
`tests/fixtures/pil_autoaugment.py`, which the tests check against balms), ToTensor, Cutout(1,
16), Normalize. Batches of 512 through a DataLoader with `--workers` workers (0: in the main
process), one intra-op thread. Prints JSON: images per second, the fastest of `--passes` passes.
"""
import argparse
import json
import os
import random
import sys
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures"))
from pil_autoaugment import RANGES, operation  # noqa: E402

POLICY = [
    (0.1, "invert", 7, 0.2, "contrast", 6), (0.7, "rotate", 2, 0.3, "translateX", 9),
    (0.8, "sharpness", 1, 0.9, "sharpness", 3), (0.5, "shearY", 8, 0.7, "translateY", 9),
    (0.5, "autocontrast", 8, 0.9, "equalize", 2), (0.2, "shearY", 7, 0.3, "posterize", 7),
    (0.4, "color", 3, 0.6, "brightness", 7), (0.3, "sharpness", 9, 0.7, "brightness", 9),
    (0.6, "equalize", 5, 0.5, "equalize", 1), (0.6, "contrast", 7, 0.6, "sharpness", 5),
    (0.7, "color", 7, 0.5, "translateX", 8), (0.3, "equalize", 7, 0.4, "autocontrast", 8),
    (0.4, "translateY", 3, 0.2, "sharpness", 6), (0.9, "brightness", 6, 0.2, "color", 8),
    (0.5, "solarize", 2, 0.0, "invert", 3), (0.2, "equalize", 0, 0.6, "autocontrast", 0),
    (0.2, "equalize", 8, 0.6, "equalize", 4), (0.9, "color", 9, 0.6, "equalize", 6),
    (0.8, "autocontrast", 4, 0.2, "solarize", 8), (0.1, "brightness", 3, 0.7, "color", 0),
    (0.4, "solarize", 5, 0.9, "autocontrast", 3), (0.9, "translateY", 9, 0.7, "translateY", 9),
    (0.9, "autocontrast", 2, 0.8, "solarize", 3), (0.8, "equalize", 8, 0.1, "invert", 3),
    (0.7, "translateY", 9, 0.9, "autocontrast", 1),
]


class CIFAR10Policy:
    def __call__(self, img):
        p1, op1, m1, p2, op2, m2 = POLICY[random.randint(0, len(POLICY) - 1)]
        if random.random() < p1:
            img = operation(op1, img, RANGES[op1][m1], random.choice([-1, 1]))
        if random.random() < p2:
            img = operation(op2, img, RANGES[op2][m2], random.choice([-1, 1]))
        return img


class Cutout:
    def __init__(self, length):
        self.length = length

    def __call__(self, img):
        h, w = img.size(1), img.size(2)
        mask = np.ones((h, w), np.float32)
        y, x = np.random.randint(h), np.random.randint(w)
        y1, y2 = np.clip(y - self.length // 2, 0, h), np.clip(y + self.length // 2, 0, h)
        x1, x2 = np.clip(x - self.length // 2, 0, w), np.clip(x + self.length // 2, 0, w)
        mask[y1:y2, x1:x2] = 0.0
        return img * torch.from_numpy(mask).expand_as(img)


class Images(Dataset):
    def __init__(self, data, transform):
        self.data, self.transform = data, transform

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.data[i]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = np.fromfile(args.images, np.uint8).reshape(args.count, 32, 32, 3)
    transform = T.Compose([
        T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), CIFAR10Policy(), T.ToTensor(),
        Cutout(16), T.Normalize((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    ])
    loader = DataLoader(Images(data, transform), batch_size=512, num_workers=args.workers,
                        persistent_workers=args.workers > 0)
    best = float("inf")
    for _ in range(args.passes):
        started = time.perf_counter()
        for batch in loader:
            assert batch.shape[1:] == (3, 32, 32)
        best = min(best, time.perf_counter() - started)
    print(json.dumps({"images_per_second": args.count / best}))


if __name__ == "__main__":
    main()
