"""Wall time of one comparison on Ray (1 and 2 local nodes) against the local executors, and the
per-trial overhead Ray adds.

The comparison: ``compare("digits", schedules=4 built-ins, seeds=2, peak=0.05, refine=False,
search="grid")``,
8 trials, at each ``--steps`` budget. Executors: Serial (the local pool with 1 process), a
LocalPool of 2 processes, and :class:`lrkit.tune.ray_executor.RayExecutor` on a local
``ray.cluster_utils.Cluster`` with 1 node, then 2 nodes (1 CPU each). Every executor is started
and warmed up (one untimed comparison) before timing, so the table shows the steady state, not
start-up; within each phase the executors are timed in interleaved rounds and the median of
``--repeat`` rounds is kept (min in brackets). The ratio is to Serial's median of the same phase.

Overhead: 64 trials of 10 steps each, on Ray with 1 node (one trial at a time, as Serial) and on
Serial; (Ray - Serial) / 64 is what Ray adds per trial (submission, scheduling, the result's
round trip), median of the rounds.

The Ray part runs in a network namespace that holds only the loopback interface, so Ray cannot
advertise or reach any address but 127.0.0.1: as root the script re-runs itself under
``unshare -n``; otherwise it stops (pass ``--no-namespace`` to run it on the host network).

Run: ``python benchmarks/ray_scaling.py`` (as root; about 3 minutes on 2 idle cores).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

SCHEDULES = ["constant", "cosine", "one-cycle", "wsd"]
MB = 1024 * 1024


def _in_namespace(argv: list[str]) -> int:
    """Re-run this script in a loopback-only network (and pid) namespace."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        print(
            "ray_scaling: needs root and unshare for a loopback-only namespace (or --no-namespace)",
            file=sys.stderr,
        )
        return 2
    inner = f"ip link set lo up && exec {sys.executable} {os.path.abspath(__file__)} --inside"
    inner += "".join(f" '{a}'" for a in argv)
    cmd = ["unshare", "-n", "-p", "-f", "--kill-child", "--mount-proc", "sh", "-c", inner]
    return subprocess.run(cmd, env={**os.environ, "RAY_DISABLE_USAGE_STATS": "1"}).returncode


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _compare(steps: int, executor: Any) -> Callable[[], Any]:
    from lrkit.tune import compare

    kw = dict(schedules=SCHEDULES, seeds=2, steps=steps, peak=0.05, refine=False, search="grid")
    return lambda: compare("digits", **kw, progress=False, executor=executor)


def _overhead_trials(n: int = 64) -> list[Any]:
    from lrkit.tune._runs import run_key
    from lrkit.tune.candidates import builtin_schedule
    from lrkit.tune.records import Trial

    cand = builtin_schedule("constant", 0.05, 10)
    return [Trial(cand, s, 10, run_key("digits", cand, s, 10)) for s in range(n)]


def _phase(nodes: int, execs: dict[str, Any], steps: list[int], repeat: int) -> dict[Any, Any]:
    """Warm up, then time every (executor, steps) in interleaved rounds."""
    times: dict[Any, list[float]] = {}
    for s in steps:
        for ex in execs.values():
            _compare(s, ex)()  # warm-up: workers import torch and load the task
    trials = _overhead_trials()
    for _ in range(repeat):
        for s in steps:
            for name, ex in execs.items():
                times.setdefault((name, s), []).append(_timed(_compare(s, ex)))
        if nodes == 1:
            for name in ("serial", "ray"):
                run = execs[name].run
                times.setdefault(("over", name), []).append(_timed(lambda r=run: list(r(trials))))
    return times


def main() -> int:
    """Measure and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, nargs="+", default=[50, 1000], help="steps per trial")
    p.add_argument("--repeat", type=int, default=5, help="timed rounds per phase (default 5)")
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--no-namespace", action="store_true", help="run on the host network")
    args = p.parse_args()
    if not args.inside and not args.no_namespace:
        return _in_namespace(sys.argv[1:])

    import ray
    import torch
    from ray.cluster_utils import Cluster

    from lrkit.tools.tables import text_table
    from lrkit.tune.executors import LocalPool, Serial
    from lrkit.tune.ray_executor import RayExecutor
    from lrkit.tune.tasks import load_task

    torch.set_num_threads(1)
    task = load_task("digits")
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False, "object_store_memory": 80 * MB},
    )
    phases = {}
    try:
        with LocalPool(2, "digits", task) as pool, RayExecutor("digits", cluster.address) as rex:
            execs = {"serial": Serial(task), "pool": pool, "ray": rex}
            phases[1] = _phase(1, execs, args.steps, args.repeat)
            addresses = {n["NodeManagerAddress"] for n in ray.nodes()}
            cluster.add_node(num_cpus=1, object_store_memory=80 * MB)
            cluster.wait_for_nodes()
            phases[2] = _phase(2, execs, args.steps, args.repeat)
            addresses |= {n["NodeManagerAddress"] for n in ray.nodes()}
    finally:
        cluster.shutdown()
    if addresses != {"127.0.0.1"}:
        print(f"warning: Ray nodes advertised {sorted(addresses)}", file=sys.stderr)

    def cell(t: list[float], ref: list[float]) -> list[str]:
        med = statistics.median(t)
        return [f"{med:.2f} [{min(t):.2f}]", f"{med / statistics.median(ref):.2f}"]

    header = ["steps/trial", "Ray nodes", "executor", "wall s, median [min]", "x serial"]
    labels = {"serial": "serial (= pool of 1)", "pool": "local pool, 2 processes"}
    rows = []
    for s in args.steps:
        for nodes in (1, 2):
            ref = phases[nodes][("serial", s)]
            labels["ray"] = f"ray, {nodes} node(s) x 1 CPU"
            for name, label in labels.items():
                rows.append([s, nodes, label, *cell(phases[nodes][(name, s)], ref)])
    over = phases[1]
    ray_ms = statistics.median(over[("over", "ray")]) / 64 * 1000
    serial_ms = statistics.median(over[("over", "serial")]) / 64 * 1000
    v = f"python {platform.python_version()}, ray {ray.__version__}, torch {torch.__version__}"
    print(f"{v}, {os.cpu_count()} CPUs; Ray nodes on {sorted(addresses)}")
    print(f"comparison: digits, {len(SCHEDULES)} schedules x 2 seeds = 8 trials, refine off")
    print("each phase (Ray with 1 node, then 2) times all three executors; x serial: to the")
    print("serial median of the same phase\n")
    print(text_table(header, rows))
    print(
        f"\n64 trials of 10 steps, one at a time: {ray_ms:.1f} ms per trial on Ray (1 node), "
        f"{serial_ms:.1f} ms in Serial: Ray adds {ray_ms - serial_ms:.1f} ms per trial "
        f"(median of {args.repeat} rounds)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
