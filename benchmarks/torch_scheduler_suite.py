"""Run PyTorch's own scheduler tests against lrkit's drop-ins and print a table of the results.

PyTorch's ``test/optim/test_lrscheduler.py`` is not part of this repository: get it yourself
(from a PyTorch source checkout of your torch version) and pass its path. The script copies it
into a scratch folder outside the repository, puts a shim module next to it that replaces the
classes of ``torch.optim.lr_scheduler`` by ``lrkit.torch.compat``'s before the test module
imports them, and runs it with pytest. torch's test utilities come from the installed torch
(``torch.testing._internal``; they need the ``expecttest`` package)::

    python benchmarks/torch_scheduler_suite.py path/to/test_lrscheduler.py [--scratch /tmp/torchtests]

Each failure is put in one class: a value differs, lrkit raises where torch does not, or other
(private attributes, ``__dict__`` comparisons, warnings, ReduceLROnPlateau, ...).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

SHIM = '''"""Replace torch's scheduler classes by lrkit.torch.compat's (scratch; not lrkit's code)."""
import torch.optim.lr_scheduler as L

import lrkit.torch.compat as C

for _name in C.__all__:
    setattr(L, _name, getattr(C, _name))
'''

#: (class, how a failure's test name or first error line shows it), first match wins.
CLASSES = [
    ("other: ReduceLROnPlateau (its own work)", r"reduce_lr_on_plateau|ReduceLROnPlateau"),
    ("values: two schedulers step one optimizer (deliberate)", r"test_compound_"),
    ("other: private attribute (_last_lr, _scale_fn_ref)", r"_continue$|scale_fn|picklable"),
    ("other: compares __dict__ internals after a load", r"_state_dict(_fn|_obj)?$"),
    ("other: a torch warning not emitted", r"_pattern_"),
    ("values", r"not close|not equal|comparison failed|AssertionError"),
    ("raises where torch does not", r"Error"),
]


def classify(name: str, error: str) -> str:
    """The class of one failure."""
    for label, pattern in CLASSES:
        if re.search(pattern, name) or re.search(pattern, error):
            return label
    return "other"


def main() -> int:
    """Copy, patch, run, tabulate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("test_file", type=Path, help="PyTorch's test/optim/test_lrscheduler.py")
    parser.add_argument("--scratch", type=Path, help="scratch folder (default: a new temp dir)")
    args = parser.parse_args()
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="torchtests-"))
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "shim.py").write_text(SHIM)
    lines = args.test_file.read_text().splitlines()
    patched = []
    for line in lines:
        if line.startswith("import torch_npu"):  # (forks for other devices import their own)
            continue
        if line == "import torch":
            patched.append("import shim  # noqa: F401")
        patched.append(line)
    target = scratch / "test_lrscheduler_lrkit.py"
    target.write_text("\n".join(patched) + "\n")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=no", "-rf",
         target.name],
        cwd=scratch,
        capture_output=True,
        text=True,
        check=False,
    ).stdout  # fmt: skip
    summary = re.findall(r"(\d+) (passed|failed|error)", out.splitlines()[-1] if out else "")
    counts = {kind: int(n) for n, kind in summary}
    table: dict[str, list[str]] = {}
    for m in re.finditer(r"^FAILED \S+::(\w+)(?: - (.*))?$", out, flags=re.MULTILINE):
        name, error = m.group(1), m.group(2) or ""
        table.setdefault(classify(name, error), []).append(name)
    ran = counts.get("passed", 0) + counts.get("failed", 0)
    print(f"PyTorch scheduler tests against lrkit.torch.compat ({args.test_file})")
    print(f"{'result':<58} {'tests':>5}")
    print(f"{'-' * 58} {'-' * 5}")
    print(f"{'ran':<58} {ran:>5}")
    print(f"{'passed':<58} {counts.get('passed', 0):>5}")
    for label, names in sorted(table.items()):
        print(f"{'failed, ' + label:<58} {len(names):>5}")
    for label, names in sorted(table.items()):
        print(f"\n{label}: {', '.join(sorted(names))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
