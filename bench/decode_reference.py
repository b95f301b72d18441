"""torchvision's ImageNet-LT input pipeline on a list of JPEG files, for `balms bench-decode`.

    python decode_reference.py --list files.txt --workers 0 --passes 3

Prints JSON: images per second of the training transform (RandomResizedCrop(224), flip,
ColorJitter(0.4, 0.4, 0.4, 0), ToTensor, Normalize) and of the test transform (Resize(256),
CenterCrop(224), ToTensor, Normalize), PIL decoding with `.convert('RGB')` as the official
`LT_Dataset`; fastest of `--passes` passes; one intra-op thread; `--workers` DataLoader workers
(0: in the main process).
"""
import argparse
import json
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


class Files(Dataset):
    def __init__(self, paths, transform):
        self.paths, self.transform = paths, transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with open(self.paths[i], "rb") as f:
            image = Image.open(f).convert("RGB")
        return self.transform(image)


def rate(paths, transform, workers, passes, batch):
    loader = DataLoader(Files(paths, transform), batch_size=batch, num_workers=workers,
                        persistent_workers=workers > 0)
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        for _ in loader:
            pass
        best = min(best, time.perf_counter() - start)
    return len(paths) / best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--list", required=True)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--resize", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    with open(args.list) as f:
        paths = [line.strip() for line in f if line.strip()]
    normalize = [T.ToTensor(), T.Normalize(MEAN, STD)]
    train = T.Compose([T.RandomResizedCrop(args.crop), T.RandomHorizontalFlip(),
                       T.ColorJitter(0.4, 0.4, 0.4, 0)] + normalize)
    test = T.Compose([T.Resize(args.resize), T.CenterCrop(args.crop)] + normalize)
    out = {
        "train": rate(paths, train, args.workers, args.passes, args.batch),
        "test": rate(paths, test, args.workers, args.passes, args.batch),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
