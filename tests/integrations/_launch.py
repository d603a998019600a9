"""Launching 2-process torchrun jobs on 127.0.0.1 (gloo) for the distributed integration tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun(script: str, out: Path, *, timeout: float = 150) -> list[dict[str, Any]]:
    """Run ``script`` (in this folder) on 2 CPU processes; return each rank's JSON, rank order.

    Raises:
        AssertionError: the job failed or a rank wrote nothing (its output is in the message).
        subprocess.TimeoutExpired: the job ran past ``timeout`` seconds (it is killed).
    """
    out.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "MASTER_ADDR": "127.0.0.1",
        "GLOO_SOCKET_IFNAME": "lo",
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        str(HERE / script),
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    files = [out / f"rank{r}.json" for r in range(2)]
    assert proc.returncode == 0 and all(f.exists() for f in files), proc.stdout + proc.stderr
    return [json.loads(f.read_text()) for f in files]
