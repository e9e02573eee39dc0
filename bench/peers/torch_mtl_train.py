#!/usr/bin/env python3
"""PyTorch on the CPU doing the MTL training step that `deno task bench trainer` times.

The peer for the trainer's MTL case: the same network and the same work per step as cotrain's
MTL 1:1 step (SPEC.md section 3): a VGG-19-BN (../shared/bench/torch_vgg_train.py's vgg19_bn)
whose trunk up to conv3_1 (+ BN + ReLU, `features[:17]`) is shared; one classification batch
through the whole network (cross-entropy) and one neural batch through the trunk and a Gaussian
readout (neuralpredictors' FullGaussian2d: bilinear grid_sample at mu + sigma * eps with
align_corners, channel weights, bias, ELU + 1; MSE to the targets); the Kendall task weights
`L = exp(-s_c) CE + 0.5 s_c + 0.5 exp(-s_n) MSE + 0.5 s_n`; one SGD step (momentum 0.75,
weight decay 5e-4) over every parameter. Random data, as torch_vgg_train.py.

Prints one JSON line; `train_img_s` counts classification images per second, `train_all_img_s`
classification plus neural images.

  python3 torch_mtl_train.py --width 0.125 --size 64 --batch 32 --steps 10 --neurons 64
"""
import argparse, json, os, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "bench"))
from torch_vgg_train import vgg19_bn  # noqa: E402


class GaussianReadout(nn.Module):
    """FullGaussian2d's training path: one location per neuron, jittered per image."""

    def __init__(self, channels: int, neurons: int) -> None:
        super().__init__()
        self.mu = nn.Parameter(torch.empty(neurons, 2).uniform_(-0.3, 0.3))
        self.sigma = nn.Parameter(torch.empty(neurons, 2).uniform_(0, 0.6))
        self.features = nn.Parameter(torch.full((channels, neurons), 1 / channels))
        self.bias = nn.Parameter(torch.zeros(neurons))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n = x.shape[0], self.mu.shape[0]
        grid = (self.mu + self.sigma * torch.randn(b, n, 2)).clamp(-1, 1).unsqueeze(2)  # [B, N, 1, 2]
        s = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)  # [B, C, N, 1]
        y = (s.squeeze(-1) * self.features.unsqueeze(0)).sum(1) + self.bias
        return F.elu(y - 1) + 1


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--width", type=float, default=0.125)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--classes", type=int, default=200)
    p.add_argument("--neurons", type=int, default=64)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    net = vgg19_bn(a.width, 1, a.classes)
    trunk, rest = net[:17], net[17:]
    channels = trunk[14].out_channels  # conv3_1
    readout = GaussianReadout(channels, a.neurons)
    s_c = nn.Parameter(torch.zeros(()))
    s_n = nn.Parameter(torch.zeros(()))
    params = [*net.parameters(), *readout.parameters(), s_c, s_n]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.75, weight_decay=5e-4)
    x = torch.randn(a.batch, 1, a.size, a.size)
    y = torch.randint(0, a.classes, (a.batch,))
    xn = torch.randn(a.batch, 1, a.size, a.size)
    tn = torch.rand(a.batch, a.neurons) + 1

    def step() -> None:
        opt.zero_grad()
        ce = F.cross_entropy(rest(trunk(x)), y)
        mse = F.mse_loss(readout(trunk(xn)), tn)
        loss = torch.exp(-s_c) * ce + 0.5 * s_c + 0.5 * torch.exp(-s_n) * mse + 0.5 * s_n
        loss.backward()
        opt.step()

    step()  # warm-up
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    rate = a.steps * a.batch / (time.perf_counter() - t)
    print(json.dumps({"peer": f"pytorch-{torch.__version__}-mtl", "case": "mtl-1:1", "width": a.width,
                      "size": a.size, "batch": a.batch, "neurons": a.neurons, "threads": a.threads,
                      "train_img_s": round(rate, 1), "train_all_img_s": round(2 * rate, 1),
                      "infer_img_s": 0}))


if __name__ == "__main__":
    main()
