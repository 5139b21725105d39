"""Read back an offline W&B run directory, so the tests check the real files W&B wrote (no mocks)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_wandb_run(run_dir: Path) -> dict[str, Any]:
    """Read back an offline W&B run directory's transaction log (run-<id>.wandb): the run record's
    id, name, group, job_type, config, every history row, summary and exit code. A leveldb-style log
    (github.com/google/leveldb/blob/main/doc/log_format.md) of wandb_internal_pb2.Record messages."""
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = Path(run_dir).glob("run-*.wandb")
    out: dict[str, Any] = {"history": [], "summary": {}, "config": {}, "exit_code": None}
    for data in _leveldb_records(path.read_bytes()):
        rec = pb.Record()
        rec.ParseFromString(data)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            out.update(id=r.run_id, name=r.display_name, group=r.run_group, job_type=r.job_type,
                       config={i.key: json.loads(i.value_json) for i in r.config.update})
        elif kind == "history":
            out["history"].append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            out["summary"].update({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.summary.update})
        elif kind == "exit":
            out["exit_code"] = rec.exit.exit_code
    return out


def _leveldb_records(buf: bytes, block: int = 32768):
    """Yield the payloads of a leveldb log: 7-byte file header, then per block records of
    crc32 (4) | length (2) | type (1: full, 2: first, 3: middle, 4: last) | data."""
    import struct

    pos, part = 7, b""
    while pos + 7 <= len(buf):
        if block - pos % block < 7:  # a block's trailer: too short for a record header
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", buf[pos : pos + 7])
        data, pos = buf[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0 and length == 0:
            break
        part = data if kind in (1, 2) else part + data
        if kind in (1, 4):
            yield part
            part = b""
