"""Regenerate `grpc_predict_v2.desc` (the serialized FileDescriptorSet neurona.serving.protocol
loads) from `grpc_predict_v2.proto` with grpcio-tools' bundled protoc:
`python -m neurona.serving.protogen`. Needed only after editing the .proto; the .desc is
committed so that serving needs protobuf and grpcio at run time, not grpcio-tools.
May import: grpcio-tools (lazily).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def build_descriptor_set(out_path) -> Path:
    """Compile the .proto into a FileDescriptorSet at `out_path` (no source info: stable bytes)."""
    from grpc_tools import protoc

    out_path = Path(out_path)
    rc = protoc.main(["protoc", f"-I{_HERE}", f"--descriptor_set_out={out_path}", "grpc_predict_v2.proto"])
    if rc != 0:
        raise RuntimeError(f"protoc failed with exit status {rc} on {_HERE / 'grpc_predict_v2.proto'}")
    return out_path


def main():
    target = _HERE / "grpc_predict_v2.desc"
    with tempfile.TemporaryDirectory() as tmp:
        data = build_descriptor_set(Path(tmp) / "v2.desc").read_bytes()
    target.write_bytes(data)
    print(f"wrote {target} ({len(data)} bytes)")


if __name__ == "__main__":
    sys.exit(main())
