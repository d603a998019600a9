"""The Ray side of tests/tune/test_ray.py, run as a script inside a network namespace that holds
only the loopback interface (``unshare -n``), so that Ray can reach no address but 127.0.0.1.

It starts a local two-node cluster (``ray.cluster_utils.Cluster``: a head and a second node, one
CPU each), runs the scenarios below and writes what it saw to the JSON file named by its first
argument; the test makes the assertions. The cluster is shut down at the end.

* ``nodes``: every node's address.
* ``same``: one comparison (with peak refinement) by Serial and by :class:`RayExecutor`.
* ``killed``: a comparison during which the first worker seen training a trial (on either
  node) is killed (SIGKILL); the Serial numbers of the same comparison.
* ``resume``: a Ray comparison interrupted after two finished runs, then resumed: how many
  trials the resumed one ran, and its numbers.
* ``unimportable``: the error of a task whose module only the driver can import.
* ``cli``: ``lrkit compare --executor ray --address HOST:PORT`` run by this process once it has
  left the cluster: its exit code, recommendation and run files.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

MB = 1024 * 1024


def _numbers(comp: Any) -> dict[str, Any]:
    """What must not depend on the executor: every run's curves, the summary, the choice."""
    return {
        "runs": {r.key: [list(r.lr), list(r.train_loss), list(r.val_loss)] for r in comp.runs},
        "summary": [[s.schedule, s.val_loss_mean, s.val_loss_std] for s in comp.summary],
        "recommendation": comp.recommendation,
        "refined": [[p.schedule, p.refined_peak] for p in comp.refinements],
        "refine_runs": sum(len(p.runs) for p in comp.refinements),
    }


def _kill_on(raylets: dict[int, str], stop: threading.Event, killed: list[Any]) -> None:
    """Kill (SIGKILL) the first worker of one of the ``raylets`` (pid: node) seen training a
    trial; record its pid and node."""
    while not stop.is_set() and not killed:
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                cmd = Path(f"/proc/{name}/cmdline").read_bytes()
                ppid = int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid in raylets and cmd.startswith(b"ray::_ray_trial"):
                os.kill(int(name), signal.SIGKILL)
                killed.append([int(name), raylets[ppid]])
                return
        time.sleep(0.02)


class _StopAfter:
    """Passes ``n`` results through, then raises KeyboardInterrupt (an interrupted run)."""

    def __init__(self, inner: Any, n: int) -> None:
        self.inner, self.n = inner, n

    def run(self, trials: Sequence[Any]) -> Iterator[Any]:
        """Yield ``n`` results, then interrupt."""
        for i, res in enumerate(self.inner.run(trials)):
            if i == self.n:
                raise KeyboardInterrupt
            yield res


class _Count:
    """Counts the trials handed to the executor it wraps."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.seen = inner, 0

    def run(self, trials: Sequence[Any]) -> Iterator[Any]:
        """Count, then run."""
        self.seen += len(trials)
        yield from self.inner.run(trials)


def _cli(address: str, out: Path) -> dict[str, Any]:
    """``lrkit compare --executor ray --address HOST:PORT`` (this process is not connected, so
    the executor joins the cluster by its address): exit code, recommendation, runs saved."""
    from lrkit.cli import main as cli

    argv = ["compare", "digits", "--executor", "ray", "--address", address]
    argv += ["--schedules", "constant", "cosine", "--seeds", "2", "--steps", "40"]
    argv += ["--peak", "0.05", "--no-refine", "--no-progress", "--search", "grid", "-o", str(out)]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli(argv)
    runs = {}
    for f in (out / "runs").glob("*.json"):
        run = json.loads(f.read_text())
        runs[run["key"]] = run["val"]["loss"]
    lines = buf.getvalue().splitlines()
    rec = next((x.split(":", 1)[1].strip() for x in lines if x.startswith("recommendation")), None)
    return {"code": code, "recommendation": rec, "val_loss": runs}


def main(out: Path) -> None:
    """Start the cluster, run the scenarios, write the report, shut the cluster down."""
    import ray
    from ray.cluster_utils import Cluster

    from lrkit.tune import compare
    from lrkit.tune.ray_executor import RayExecutor, RayTaskError

    report: dict[str, Any] = {}
    t0 = time.perf_counter()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "include_dashboard": False,
            "object_store_memory": 80 * MB,
        },
    )
    try:
        second = cluster.add_node(num_cpus=1, object_store_memory=80 * MB)
        report["start_s"] = time.perf_counter() - t0
        report["address"] = cluster.address
        tmp = Path(tempfile.mkdtemp(prefix="lrkit-ray-"))
        with RayExecutor("digits", address=cluster.address) as ex:
            kw: dict[str, Any] = dict(
                schedules=["constant", "cosine"],
                seeds=2,
                steps=40,
                peak=0.05,
                progress=False,
                search="grid",
            )
            refine = dict(refine_top=1, refine_steps=1)
            report["same"] = {
                "serial": _numbers(compare("digits", **kw, **refine)),
                "ray": _numbers(compare("digits", **kw, **refine, executor=ex, out=tmp / "a")),
            }
            report["nodes"] = [n["NodeManagerAddress"] for n in ray.nodes()]

            long = {**kw, "steps": 400, "refine": False}
            raylets = {
                node.all_processes["raylet"][0].process.pid: role
                for node, role in ((second, "second"), (cluster.head_node, "head"))
            }
            killed: list[Any] = []
            for attempt in (1, 2):  # a second, longer try if no trial was caught running
                long["steps"] = 400 * attempt
                stop = threading.Event()
                watcher = threading.Thread(target=_kill_on, args=(raylets, stop, killed))
                watcher.start()
                try:
                    got = compare("digits", **long, executor=ex)
                finally:
                    stop.set()
                    watcher.join()
                if killed:
                    break
            report["killed"] = {
                "attempts": attempt,
                "pids": killed,
                "ray": _numbers(got),
                "serial": _numbers(compare("digits", **long)),
            }

            main_kw = {**kw, "refine": False, "out": tmp / "b"}
            try:
                compare("digits", **main_kw, executor=_StopAfter(ex, 2))
                interrupted = False
            except KeyboardInterrupt:
                interrupted = True
            files = len(list((tmp / "b" / "runs").glob("*.json")))
            counted = _Count(ex)
            resumed = compare("digits", **main_kw, resume=True, executor=counted)
            report["resume"] = {
                "interrupted": interrupted,
                "files_after_interrupt": files,
                "trials_resumed": counted.seen,
                "ray": _numbers(resumed),
            }

            mods = tmp / "driver_only"
            mods.mkdir()
            (mods / "lrkit_driver_only_task.py").write_text(
                "from lrkit.tune.tasks import load_task\n\n\n"
                "def task():\n    return load_task('digits')\n"
            )
            sys.path.append(str(mods))
            ref = "lrkit_driver_only_task:task"
            try:
                compare(ref, **{**kw, "refine": False}, executor=RayExecutor(ref))
                report["unimportable"] = None
            except RayTaskError as exc:
                report["unimportable"] = str(exc)
        report["cli"] = _cli(cluster.address, tmp / "cli")
        report["ray_left_running"] = ray.is_initialized()
        report["total_s"] = time.perf_counter() - t0
    finally:
        cluster.shutdown()
    out.write_text(json.dumps(report))


if __name__ == "__main__":
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    main(Path(sys.argv[1]))
