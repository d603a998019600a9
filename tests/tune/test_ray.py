"""The Ray executor on a real two-node Ray cluster, on loopback only: the cluster runs in a network
namespace that holds nothing but the loopback interface (``unshare -n``, as root), so no traffic
can leave 127.0.0.0/8. One script (tests/tune/_ray_cluster.py) runs every scenario on one cluster
(Ray starts slowly); the tests below check what it saw. Also the executor's validation, which
needs no cluster."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lrkit.tune.ray_executor import RayExecutor

SCRIPT = Path(__file__).with_name("_ray_cluster.py")
TIMEOUT_S = 240


def _namespace_problem() -> str | None:
    """Why a loopback-only network namespace cannot be made here (None: it can)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root to make a loopback-only network namespace (unshare -n)"
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"needs the {tool!r} command to make a loopback-only network namespace"
    probe = subprocess.run(
        ["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, timeout=30
    )
    if probe.returncode != 0:
        return f"cannot make a network namespace: {probe.stderr.decode().strip()[:200]}"
    return None


@pytest.fixture(scope="module")
def cluster_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the cluster script in a loopback-only network (and pid) namespace; its report.
    ``--kill-child`` and the pid namespace end every process it started if it is cut off."""
    pytest.importorskip("ray")
    why = _namespace_problem()
    if why:
        pytest.skip(why)
    out = tmp_path_factory.mktemp("ray") / "report.json"
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in [src, os.environ.get("PYTHONPATH")] if p),
        "RAY_DISABLE_USAGE_STATS": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    inner = f"ip link set lo up && exec {sys.executable} {SCRIPT} {out}"
    cmd = ["unshare", "-n", "-p", "-f", "--kill-child", "--mount-proc", "sh", "-c", inner]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report: dict[str, Any] = json.loads(out.read_text())
    return report


@pytest.mark.slow
def test_every_node_is_on_loopback(cluster_report):
    """The cluster has two nodes and every one, and the head's address, is 127.0.0.1."""
    assert cluster_report["nodes"] == ["127.0.0.1", "127.0.0.1"]
    assert cluster_report["address"].startswith("127.0.0.1:")


@pytest.mark.slow
def test_ray_gives_the_serial_answer_bitwise(cluster_report):
    """Same seeds, same runs: every curve, the summary, the refined peaks and the
    recommendation are bitwise those of the Serial executor (refinement trials included)."""
    same = cluster_report["same"]
    assert same["ray"] == same["serial"]
    assert len(same["ray"]["runs"]) == 4 and same["ray"]["refine_runs"] > 0
    assert same["ray"]["recommendation"] in ("constant", "cosine")


@pytest.mark.slow
def test_a_killed_worker_has_its_trial_retried(cluster_report):
    """A worker killed (SIGKILL) mid-trial on one node: the comparison still finishes with
    every trial, with the Serial numbers."""
    killed = cluster_report["killed"]
    assert len(killed["pids"]) == 1
    assert len(killed["ray"]["runs"]) == 4
    assert killed["ray"] == killed["serial"]


@pytest.mark.slow
def test_an_interrupted_ray_comparison_resumes_from_the_run_files(cluster_report):
    """Interrupted after two finished runs, the comparison resumes with only the other two and
    gives the uninterrupted answer."""
    res = cluster_report["resume"]
    assert res["interrupted"] and res["files_after_interrupt"] == 2
    assert res["trials_resumed"] == 2
    assert res["ray"]["runs"] == cluster_report["same"]["serial"]["runs"]


@pytest.mark.slow
def test_a_task_the_workers_cannot_import_fails_in_one_line(cluster_report):
    """A task module only the driver can import: one line that says it must be importable on
    every node."""
    msg = cluster_report["unimportable"]
    assert msg is not None and "\n" not in msg
    assert "lrkit_driver_only_task" in msg and "importable on every node" in msg


@pytest.mark.slow
def test_the_cli_runs_on_the_cluster_by_address(cluster_report):
    """lrkit compare --executor ray --address HOST:PORT joins the cluster, saves every run with
    the Serial numbers, recommends what the Ray comparison did, and leaves Ray shut down."""
    cli, serial = cluster_report["cli"], cluster_report["same"]["serial"]["runs"]
    assert cli["code"] == 0
    assert cli["val_loss"] == {key: curves[2] for key, curves in serial.items()}
    assert cli["recommendation"] == cluster_report["resume"]["ray"]["recommendation"]
    assert cluster_report["ray_left_running"] is False


def test_address_needs_the_ray_executor(capsys):
    """--address without --executor ray is refused in one line, before anything runs."""
    from lrkit.cli import main

    assert main(["compare", "--address", "auto", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "compare: --address needs --executor ray, got --address auto" in err


def test_importing_the_module_does_not_import_ray():
    """ray is imported when trials first run, not with the module."""
    code = "import sys, lrkit.tune.ray_executor; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"task_ref": "nosuch"}, "task_ref must be a built-in task .* got task_ref='nosuch'"),
        ({"address": "localhost"}, "address must be None, 'auto' or 'HOST:PORT', got address="),
        ({"cpus_per_trial": 0}, "cpus_per_trial must be a number > 0, got cpus_per_trial=0"),
        ({"gpus_per_trial": -1}, "gpus_per_trial must be a number >= 0, got gpus_per_trial=-1"),
        ({"max_retries": -1}, "max_retries must be an integer >= 0, got max_retries=-1"),
    ],
)
def test_bad_settings_fail_at_construction(kw, match):
    """Bad settings are refused when the executor is built, with the value in the message."""
    args = {"task_ref": "digits", **kw}
    with pytest.raises(ValueError, match=match):
        RayExecutor(**args)


def test_good_addresses_are_accepted():
    """None, 'auto', HOST:PORT (and ray://HOST:PORT) are accepted without starting Ray."""
    for address in (None, "auto", "127.0.0.1:6379", "head.example:10001", "ray://127.0.0.1:10001"):
        assert RayExecutor("digits", address=address).address == address


def test_empty_batch_starts_nothing():
    """No trials: nothing is submitted and Ray is not started."""
    ex = RayExecutor("digits", address="127.0.0.1:1")
    assert list(ex.run([])) == []
    assert ex._remote is None


_RAY_START = """
set -e
ip link set lo up
{ray} start --head --node-ip-address=127.0.0.1 --port=6391 --num-cpus=1 \\
    --include-dashboard=false --disable-usage-stats --object-store-memory=80000000 > /dev/null
{ray} start --address=127.0.0.1:6391 --node-ip-address=127.0.0.1 --num-cpus=1 \\
    --object-store-memory=80000000 > /dev/null
set +e
{py} -m lrkit.cli compare {args} --executor ray --address 127.0.0.1:6391 -o {ray_out} > {ray_out}.txt
rc=$?
{ray} stop --force > /dev/null 2>&1
{py} -m lrkit.cli compare {args} -o {local_out} > {local_out}.txt || exit 3
exit $rc
"""


def _saved(folder: Path) -> dict[str, Any]:
    """The validation-loss curve of every saved run, by run key."""
    runs = (json.loads(f.read_text()) for f in (folder / "runs").glob("*.json"))
    return {run["key"]: run["val"]["loss"] for run in runs}


@pytest.mark.slow
def test_the_cli_joins_a_cluster_started_with_ray_start(tmp_path: Path) -> None:
    """`ray start --head` plus `ray start --address` (two nodes, loopback only), then
    `lrkit compare --executor ray --address HOST:PORT`: every run saved, bitwise equal to the
    local executor's, and the same recommendation."""
    pytest.importorskip("ray")
    why = _namespace_problem()
    if why:
        pytest.skip(why)
    ray_bin = Path(sys.executable).with_name("ray")
    if not ray_bin.exists():
        pytest.skip(f"no ray command next to {sys.executable}")
    args = "digits --schedules constant cosine --seeds 2 --steps 40 --peak 0.05"
    args += " --no-refine --no-progress --search grid"
    script = _RAY_START.format(
        ray=ray_bin,
        py=sys.executable,
        args=args,
        ray_out=tmp_path / "ray",
        local_out=tmp_path / "local",
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in [src, os.environ.get("PYTHONPATH")] if p),
        "RAY_DISABLE_USAGE_STATS": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    cmd = ["unshare", "-n", "-p", "-f", "--kill-child", "--mount-proc", "sh", "-c", script]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    ray_runs, local_runs = _saved(tmp_path / "ray"), _saved(tmp_path / "local")
    assert len(ray_runs) == 4
    assert ray_runs == local_runs

    def recommendation(name: str) -> str:
        lines = (tmp_path / f"{name}.txt").read_text().splitlines()
        return next(x for x in lines if x.startswith("recommendation"))

    assert recommendation("ray") == recommendation("local")
