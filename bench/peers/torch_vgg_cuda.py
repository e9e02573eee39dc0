"""PyTorch on CUDA beside bench/engine_gpu.ts: VGG-19-BN (../shared/bench/torch_vgg_train.py's
vgg19_bn, copied beside this file where ../shared does not travel) training (SGD momentum, CE) and
inference img/s at 64x64 gray, batch 32, 200 classes, one JSON line per width.

    python3 torch_vgg_cuda.py 0.125 0.25 1
"""
import json, sys, time
import torch, torch.nn as nn
from torch_vgg_train import vgg19_bn


def rate(step, seconds=5.0):
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    n, t0 = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - t0 < seconds:
        step()
        n += 1
    torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


for w in [float(a) for a in sys.argv[1:]] or [0.125]:
    torch.manual_seed(0)
    dev = torch.device("cuda")
    m = vgg19_bn(w, 1, 200).to(dev)
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.75, weight_decay=5e-4)
    x = torch.randn(32, 1, 64, 64, device=dev)
    y = torch.arange(32, device=dev) % 200

    def train():
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(m(x), y).backward()
        opt.step()

    m.train()
    tr = 32 * rate(train)
    m.eval()
    with torch.no_grad():
        inf = 32 * rate(lambda: m(x))
    print(json.dumps({"peer": f"pytorch-{torch.__version__}-cuda", "width": w,
                      "gpu": torch.cuda.get_device_name(0),
                      "train_img_s": round(tr, 1), "infer_img_s": round(inf, 1)}), flush=True)
