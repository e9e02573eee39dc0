"""A small Python client for cotrain's gRPC services.

The stubs are generated from the repository's .proto files (protos/) with grpcio-tools the first
time this package is imported, into a cache folder, so the client always matches the contracts.

    from cotrain_client import connect, to_tensor, from_tensor
    c = connect("127.0.0.1:50053")
    res = c.corruption.Corrupt(c.pb.corruption.CorruptRequest(
        images=c.pb.tensor.TensorOrRef(inline=to_tensor(images)),
        corruption="fog", severity=3, options=c.pb.corruption.CorruptOptions(seed=0)))
    out = from_tensor(res.images.inline)
"""
from __future__ import annotations

import hashlib
import importlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import grpc
import numpy as np

PROTO_ROOT = Path(os.environ.get("COTRAIN_PROTOS", Path(__file__).resolve().parents[3] / "protos"))
PROTOS = {
    "tensor": "cotrain/v1/tensor.proto",
    "corruption": "cotrain/v1/corruption.proto",
    "neural_predictor": "cotrain/v1/neural_predictor.proto",
    "classifier_trainer": "cotrain/v1/classifier_trainer.proto",
    "evaluator": "cotrain/v1/evaluator.proto",
    "reconstructor": "cotrain/v1/reconstructor.proto",
    "saliency": "cotrain/v1/saliency.proto",
    "inference": "inference/open_inference_grpc.proto",
    "health": "grpc/health/v1/health.proto",
}
# Generated modules are named after the file path; `grpc/...` would shadow the grpc package, so
# the health contract is generated from a copy under this path instead.
_RENAMED = {"grpc/health/v1/health.proto": "cotrain_grpc_health/v1/health.proto"}

_DTYPES = {
    "DTYPE_FLOAT32": np.float32,
    "DTYPE_FLOAT16": np.float16,
    "DTYPE_INT32": np.int32,
    "DTYPE_INT64": np.int64,
    "DTYPE_UINT8": np.uint8,
    "DTYPE_BOOL": np.bool_,
}


def _generate() -> Path:
    """Generates the Python stubs once per set of .proto contents; returns their folder."""
    from grpc_tools import protoc

    files = [p for p in PROTOS.values() if (PROTO_ROOT / p).exists()]
    digest = hashlib.sha256(b"".join((PROTO_ROOT / p).read_bytes() for p in files)).hexdigest()[:16]
    out = Path(tempfile.gettempdir()) / f"cotrain-py-stubs-{digest}"
    if not (out / ".done").exists():
        src = out / "_protos"
        for p in files:
            dst = src / _RENAMED.get(p, p)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes((PROTO_ROOT / p).read_bytes())
        staged = [_RENAMED.get(p, p) for p in files]
        args = ["protoc", f"-I{src}", f"--python_out={out}", f"--grpc_python_out={out}"]
        if protoc.main(args + staged) != 0:
            raise RuntimeError(f"protoc failed on {files} in {PROTO_ROOT}")
        for d in out.rglob("*"):
            if d.is_dir() and d != src and src not in d.parents:
                (d / "__init__.py").touch()
        (out / ".done").touch()
    return out


def _load():
    out = _generate()
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))
    pb, grpc_mods = {}, {}
    for name, path in PROTOS.items():
        if not (PROTO_ROOT / path).exists():
            continue
        module = _RENAMED.get(path, path)[:-len(".proto")].replace("/", ".")
        pb[name] = importlib.import_module(module + "_pb2")
        grpc_mods[name] = importlib.import_module(module + "_pb2_grpc")
    return SimpleNamespace(**pb), SimpleNamespace(**grpc_mods)


pb, pb_grpc = _load()


def to_tensor(a: np.ndarray):
    """A numpy array as a cotrain.v1.Tensor (raw little-endian row-major bytes)."""
    a = np.ascontiguousarray(a)
    for name, dt in _DTYPES.items():
        if a.dtype == dt:
            data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
            return pb.tensor.Tensor(dtype=pb.tensor.DType.Value(name), shape=list(a.shape), data=data)
    raise TypeError(f"dtype {a.dtype} is not one of {list(_DTYPES)}")


def from_tensor(t) -> np.ndarray:
    """A cotrain.v1.Tensor as a numpy array."""
    dt = np.dtype(_DTYPES[pb.tensor.DType.Name(t.dtype)]).newbyteorder("<")
    return np.frombuffer(t.data, dtype=dt).reshape(tuple(t.shape))


@dataclass
class Client:
    """Stubs of every service on one channel (one service process serves one or two of them)."""

    channel: grpc.Channel
    pb: SimpleNamespace

    def __post_init__(self):
        g = pb_grpc
        self.health = g.health.HealthStub(self.channel)
        self.corruption = g.corruption.CorruptionGeneratorStub(self.channel)
        if hasattr(g, "neural_predictor"):
            self.neural_predictor = g.neural_predictor.NeuralPredictorStub(self.channel)
        if hasattr(g, "classifier_trainer"):
            self.classifier_trainer = g.classifier_trainer.ClassifierTrainerStub(self.channel)
        if hasattr(g, "evaluator"):
            self.evaluator = g.evaluator.EvaluatorStub(self.channel)
        if hasattr(g, "reconstructor"):
            self.reconstructor = g.reconstructor.ReconstructorStub(self.channel)
        if hasattr(g, "saliency"):
            self.saliency = g.saliency.SaliencyScorerStub(self.channel)
        self.inference = g.inference.GRPCInferenceServiceStub(self.channel)


def connect(target: str, max_message_bytes: int = 64 * 1024 * 1024) -> Client:
    """A client for the service at `target` (host:port), with cotrain's message limits."""
    options = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
    ]
    return Client(grpc.insecure_channel(target, options=options), pb)
