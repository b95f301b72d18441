"""A loss written in PyTorch, run as a balms matrix cell (README, "Add a loss in PyTorch").

    external = { command = ["{python}", "external/examples/focal_torch.py", "--gamma", "2"] }

Focal loss (Lin et al. 2017), `-(1 - p_y)^gamma log p_y`, on the Balanced Softmax logits
`logits + log n_j` when `--balanced` is given. Everything else (data, model, sampler, optimiser,
schedule, evaluation) is external/lt_torch.py's, driven by the matrix's settings; this file only
replaces the loss. The command's arguments are part of the run's configuration hash, so changing
`--gamma` reruns the cell.
"""

import argparse
import os
import sys

import torch
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import lt_torch  # noqa: E402  (external/, beside this folder)

parser = argparse.ArgumentParser()
parser.add_argument("--gamma", type=float, required=True)
parser.add_argument("--balanced", action="store_true")
ours, rest = parser.parse_known_args()
sys.argv = [sys.argv[0], *rest]


def focal(spec, counts, reduction="mean"):
    log_prior = torch.log(torch.tensor(counts, dtype=torch.float32))

    def loss(logits, y):
        if ours.balanced:
            logits = logits + log_prior
        log_p = F.log_softmax(logits, dim=1).gather(1, y[:, None])[:, 0]
        terms = -((1.0 - log_p.exp()) ** ours.gamma) * log_p
        return terms.mean() if reduction == "mean" else terms

    return loss


def replace_the_default_loss(spec, counts, reduction="mean"):
    # balms knows nothing of this loss: the row's `loss` stays the default, which this replaces.
    if spec != "softmax":
        lt_torch.refuse(f"focal_torch.py replaces the default loss; the matrix row says {spec!r}")
    return focal(spec, counts, reduction)


lt_torch.loss_of = replace_the_default_loss
lt_torch.main()
