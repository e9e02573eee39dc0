"""Corrupts a batch of gray images with the corruption-generator service and prints a summary.

    python clients/python/examples/corrupt.py 127.0.0.1:50053
"""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cotrain_client import connect, from_tensor, to_tensor  # noqa: E402


def main() -> None:
    c = connect(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50053")
    status = c.health.Check(c.pb.health.HealthCheckRequest(service="")).status
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(4, 64, 64), dtype=np.uint8)
    res = c.corruption.Corrupt(c.pb.corruption.CorruptRequest(
        images=c.pb.tensor.TensorOrRef(inline=to_tensor(images)),
        corruption="gaussian_noise",
        severity=3,
        options=c.pb.corruption.CorruptOptions(seed=7),
    ))
    out = from_tensor(res.images.inline)
    try:
        c.corruption.Corrupt(c.pb.corruption.CorruptRequest(
            images=c.pb.tensor.TensorOrRef(inline=to_tensor(images)), corruption="rain", severity=3))
        error = None
    except Exception as e:  # grpc.RpcError
        error = {"code": e.code().name, "details": e.details()}
    print(json.dumps({
        "health": c.pb.health.HealthCheckResponse.ServingStatus.Name(status),
        "shape": list(out.shape),
        "dtype": str(out.dtype),
        "sha256": __import__("hashlib").sha256(out.tobytes()).hexdigest(),
        "changed": int((out != images).sum()),
        "error": error,
    }))


if __name__ == "__main__":
    main()
