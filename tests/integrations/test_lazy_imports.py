"""The frameworks load only when their integration module is imported (issue 12, item 8)."""

from __future__ import annotations

import json
import subprocess
import sys

FRAMEWORKS = ("lightning", "pytorch_lightning", "transformers", "accelerate", "keras", "jax")


def _loaded(code: str) -> list[str]:
    """Frameworks left in sys.modules by ``code`` in a fresh interpreter."""
    probe = (
        code
        + f"\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}}"
        f" & set({FRAMEWORKS!r}))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_lrkit_torch_and_the_integrations_package_load_no_framework() -> None:
    """import lrkit.torch (get_scheduler included) and lrkit.integrations load no framework."""
    assert _loaded("import lrkit, lrkit.torch, lrkit.integrations, lrkit.torch.compat") == []
