"""The Python peer of bench/transport.ts: a grpcio echo server and client on cotrain's own test
service (test/fixtures/test_service.proto), doing the same round trips as the cotrain side.

    python bench/peers/grpc_echo.py version
    python bench/peers/grpc_echo.py bench --file-root /tmp/x --s3-bucket cotrain-bench \
        --s3-prefix py   (then, on stdin: {"kind": "inline", "mib": 16, "warmup_s": 1, "reps": 5})
    python bench/peers/grpc_echo.py serve --stubs DIR ...   (started by bench)

`bench` generates the Python stubs with grpc_tools.protoc into a temporary folder, starts `serve`
in a process of its own, prints {"peer": "python-grpcio-<version>"}, then runs one case per JSON
line read on stdin (so bench/transport.ts can take turns with the cotrain side, case by case) and
answers each with {"case": "inline-16MiB", "bytes": 16777216, "seconds": [...]} (the timed
repetitions, after the warm-up). S3 settings come from S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY,
S3_REGION. It exits when stdin closes; exit code 3 means its packages are missing.

Each round trip does what a real caller pays, as the cotrain side does:
- inline: Echo with the bytes in the request; the client takes a float32 view of the answer.
- fileref: the client writes the bytes atomically (temporary file, fsync, rename) with a sha256
  sidecar under <root>/.cotrain-meta/, sends a TensorRef with the file:// URI; the server reads,
  verifies the sha256, writes its answer the same way and returns its ref; the client reads and
  verifies it.
- s3ref: the same through MinIO with the minio package (sha256 as x-amz-meta-sha256; parts of
  16 MiB, 4 at once, like cotrain's S3Store).
"""

import argparse
import hashlib
import io
import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from concurrent import futures

try:
    import grpc
    import minio
    from grpc_tools import protoc
except ImportError as err:  # bench/transport.ts turns exit code 3 into install instructions
    print(f"grpc_echo.py: {err}", file=sys.stderr)
    sys.exit(3)

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
PROTO_DIRS = [REPO / "protos", REPO / "test" / "fixtures"]
MAX_MESSAGE_BYTES = 160 * 1024 * 1024
PART_SIZE = 16 * 1024 * 1024
PART_CONCURRENCY = 4
META_DIR = ".cotrain-meta"
GRPC_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]
ITEMSIZE = {1: 4, 2: 2, 3: 4, 4: 8, 5: 1, 6: 1}  # cotrain.v1.DType -> bytes per element


def peer_name():
    return f"python-grpcio-{grpc.__version__}"


# --- stubs -----------------------------------------------------------------------------------


def generate_stubs(out_dir):
    """Compiles the test service and tensor protos into out_dir (importable as top level)."""
    args = ["grpc_tools.protoc"] + [f"-I{d}" for d in PROTO_DIRS] + [
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        "test_service.proto",
        "cotrain/v1/tensor.proto",
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"grpc_tools.protoc failed: {' '.join(args)}")
    # Regular packages, so an installed `cotrain` package cannot shadow the generated one.
    for pkg in ("cotrain", "cotrain/v1"):
        pathlib.Path(out_dir, pkg, "__init__.py").touch()


def import_stubs(stub_dir):
    sys.path.insert(0, str(stub_dir))
    import test_service_pb2 as pb  # noqa: E402
    import test_service_pb2_grpc as pb_grpc  # noqa: E402
    from cotrain.v1 import tensor_pb2 as tpb  # noqa: E402

    return pb, pb_grpc, tpb


# --- stores --------------------------------------------------------------------------------


class StoreError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def _write_atomic(path, data):
    tmp = path.with_name(f".cotrain-tmp-{uuid.uuid4().hex}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def _sync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileStore:
    """Objects as files under root, sha256 sidecars under root/.cotrain-meta (as cotrain)."""

    def __init__(self, root):
        self.root = pathlib.Path(root).resolve()

    def uri(self, key):
        return (self.root / key).as_uri()

    def key_of(self, uri):
        u = urllib.parse.urlsplit(uri)
        path = pathlib.Path(urllib.parse.unquote(u.path)).resolve()
        if u.scheme != "file" or self.root not in path.parents:
            raise StoreError(grpc.StatusCode.INVALID_ARGUMENT, f"{uri} is outside {self.root}")
        return path.relative_to(self.root).as_posix()

    def put(self, key, data):
        sha = hashlib.sha256(data).hexdigest()
        path = self.root / key
        meta = self.root / META_DIR / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        meta.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, data)
        _write_atomic(meta, (json.dumps({"sha256": sha, "size": len(data)}) + "\n").encode())
        _sync_dir(path.parent)
        _sync_dir(meta.parent)
        return sha

    def get(self, key, sha):
        try:
            recorded = json.loads((self.root / META_DIR / f"{key}.json").read_bytes())["sha256"]
            data = (self.root / key).read_bytes()
        except FileNotFoundError:
            raise StoreError(grpc.StatusCode.NOT_FOUND, f"{self.uri(key)} does not exist")
        actual = hashlib.sha256(data).hexdigest()
        if actual != recorded or (sha and actual != sha):
            raise StoreError(grpc.StatusCode.DATA_LOSS, f"{self.uri(key)}: sha256 {actual}")
        return data

    def delete(self, key):
        for p in (self.root / key, self.root / META_DIR / f"{key}.json"):
            p.unlink(missing_ok=True)


class S3Store:
    """Objects in bucket/prefix through the minio package, sha256 as x-amz-meta-sha256."""

    def __init__(self, bucket, prefix):
        endpoint = urllib.parse.urlsplit(os.environ["S3_ENDPOINT"])
        self.client = minio.Minio(
            endpoint.netloc,
            access_key=os.environ["S3_ACCESS_KEY"],
            secret_key=os.environ["S3_SECRET_KEY"],
            region=os.environ.get("S3_REGION") or "us-east-1",
            secure=endpoint.scheme == "https",
        )
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def ensure_bucket(self):
        if not self.client.bucket_exists(self.bucket):
            try:
                self.client.make_bucket(self.bucket)
            except minio.error.S3Error as err:
                if err.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    def _name(self, key):
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key):
        return f"s3://{self.bucket}/{self._name(key)}"

    def key_of(self, uri):
        root = f"s3://{self.bucket}/{self.prefix}/" if self.prefix else f"s3://{self.bucket}/"
        if not uri.startswith(root):
            raise StoreError(grpc.StatusCode.INVALID_ARGUMENT, f"{uri} is outside {root}")
        return uri[len(root):]

    def put(self, key, data):
        sha = hashlib.sha256(data).hexdigest()
        self.client.put_object(
            self.bucket,
            self._name(key),
            io.BytesIO(data),
            len(data),
            metadata={"sha256": sha},
            part_size=PART_SIZE,
            num_parallel_uploads=PART_CONCURRENCY,
        )
        return sha

    def get(self, key, sha):
        try:
            res = self.client.get_object(self.bucket, self._name(key))
        except minio.error.S3Error as err:
            if err.code == "NoSuchKey":
                raise StoreError(grpc.StatusCode.NOT_FOUND, f"{self.uri(key)} does not exist")
            raise
        try:
            data = res.read()
            recorded = res.headers.get("x-amz-meta-sha256", "")
        finally:
            res.close()
            res.release_conn()
        actual = hashlib.sha256(data).hexdigest()
        if actual != recorded or (sha and actual != sha):
            raise StoreError(grpc.StatusCode.DATA_LOSS, f"{self.uri(key)}: sha256 {actual}")
        return data

    def delete(self, key):
        self.client.remove_object(self.bucket, self._name(key))


def open_stores(args):
    s3 = S3Store(args.s3_bucket, args.s3_prefix)
    s3.ensure_bucket()
    return {"file": FileStore(args.file_root), "s3": s3}


def store_of(stores, uri):
    return stores["s3"] if uri.startswith("s3://") else stores["file"]


# --- server --------------------------------------------------------------------------------


def serve(args):
    pb, pb_grpc, tpb = import_stubs(args.stubs)
    stores = open_stores(args)

    def check_length(t, data, context):
        n = math.prod(t.shape) * ITEMSIZE.get(t.dtype, 0)
        if n == 0 or len(data) != n:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{len(data)} bytes, expected {n}")

    class Servicer(pb_grpc.TestServiceServicer):
        def Echo(self, request, context):
            t = request.tensor
            check_length(t, t.data, context)
            return pb.EchoResponse(tensor=tpb.Tensor(dtype=t.dtype, shape=t.shape, data=t.data))

        def EchoRef(self, request, context):
            if request.tensor.WhichOneof("kind") == "inline":
                t = request.tensor.inline
                check_length(t, t.data, context)
                return pb.EchoRefResponse(tensor=tpb.TensorOrRef(inline=t))
            ref = request.tensor.ref
            store = store_of(stores, ref.uri)
            try:
                data = store.get(store.key_of(ref.uri), ref.sha256)
                check_length(ref, data, context)
                key = f"echo/{uuid.uuid4()}.bin"
                sha = store.put(key, data)
            except StoreError as err:
                context.abort(err.code, str(err))
            out = tpb.TensorRef(uri=store.uri(key), sha256=sha, dtype=ref.dtype, shape=ref.shape)
            return pb.EchoRefResponse(tensor=tpb.TensorOrRef(ref=out))

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=GRPC_OPTIONS)
    pb_grpc.add_TestServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(json.dumps({"port": port}), flush=True)
    sys.stdin.read()  # serve until the parent closes our stdin
    server.stop(0.5).wait()


# --- client --------------------------------------------------------------------------------


def bench(args):
    """Answers case requests read from stdin, one JSON line each, until stdin closes."""
    with tempfile.TemporaryDirectory(prefix="cotrain-pystubs-") as stub_dir:
        generate_stubs(stub_dir)
        pb, pb_grpc, tpb = import_stubs(stub_dir)
        stores = open_stores(args)
        server = subprocess.Popen(
            [sys.executable, __file__, "serve", "--stubs", stub_dir] + store_args(args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            line = server.stdout.readline()
            if not line:
                raise RuntimeError("the peer's server exited before it listened")
            port = json.loads(line)["port"]
            channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=GRPC_OPTIONS)
            grpc.channel_ready_future(channel).result(timeout=30)
            stub = pb_grpc.TestServiceStub(channel)
            print(json.dumps({"peer": peer_name()}), flush=True)
            for line in sys.stdin:
                if not line.strip():
                    continue
                req = json.loads(line)
                kind, mib = req["kind"], req["mib"]
                seconds = run_case(kind, mib, req["warmup_s"], req["reps"], stub, pb, tpb, stores)
                out = {"case": f"{kind}-{mib}MiB", "bytes": mib << 20, "seconds": seconds}
                print(json.dumps(out), flush=True)
            channel.close()
        finally:
            server.stdin.close()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


def store_args(args):
    return [
        "--file-root", args.file_root,
        "--s3-bucket", args.s3_bucket,
        "--s3-prefix", args.s3_prefix,
    ]


def run_case(kind, mib, warmup_s, reps, stub, pb, tpb, stores):
    """The timed round trips of one case (seconds each), after warmup_s seconds of untimed ones
    (at least one; the first is checked to echo what was sent), as bench/transport.ts does."""
    payload = os.urandom(mib << 20)
    shape = [mib, 64, 64, 64]  # mib x 64x64x64 float32 = mib MiB
    f32 = tpb.DTYPE_FLOAT32
    store = stores["s3"] if kind == "s3ref" else stores["file"]
    seconds = []
    warmup_end = time.perf_counter() + warmup_s
    warm = False
    i = -1
    while len(seconds) < reps:
        i += 1
        written = []
        t0 = time.perf_counter()
        if kind == "inline":
            req = pb.EchoRequest(tensor=tpb.Tensor(dtype=f32, shape=shape, data=payload))
            res = stub.Echo(req, timeout=600)
            out = res.tensor.data
            view = memoryview(out).cast("f")
        else:
            key = f"bench/{uuid.uuid4()}.bin"
            sha = store.put(key, payload)
            written.append(key)
            ref = tpb.TensorRef(uri=store.uri(key), sha256=sha, dtype=f32, shape=shape)
            res = stub.EchoRef(pb.EchoRefRequest(tensor=tpb.TensorOrRef(ref=ref)), timeout=600)
            back = res.tensor.ref
            back_key = store.key_of(back.uri)
            written.append(back_key)
            out = store.get(back_key, back.sha256)
            view = memoryview(out).cast("f")
        elapsed = time.perf_counter() - t0
        if i == 0 and (out != payload or len(view) != len(payload) // 4):
            raise RuntimeError(f"{kind}-{mib}MiB: the echo differs from what was sent")
        for key in written:
            store.delete(key)
        if warm:
            seconds.append(elapsed)
        else:
            warm = time.perf_counter() >= warmup_end
    return seconds


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("version")
    for name in ("bench", "serve"):
        s = sub.add_parser(name)
        s.add_argument("--file-root", required=True)
        s.add_argument("--s3-bucket", required=True)
        s.add_argument("--s3-prefix", default="")
        if name == "serve":
            s.add_argument("--stubs", required=True)
    args = p.parse_args()
    if args.cmd == "version":
        print(json.dumps({"peer": peer_name(), "minio": minio.__version__}))
    elif args.cmd == "serve":
        serve(args)
    else:
        bench(args)


if __name__ == "__main__":
    main()
