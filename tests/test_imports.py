"""Import hygiene: the numpy-only layers never load torch or matplotlib.

Each check runs in a fresh interpreter (``python -c``), since the test process itself has
long since imported both.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

HEAVY = ("torch", "matplotlib")


def loaded_after(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; the heavy top-level packages it left imported."""
    probe = textwrap.dedent(code) + textwrap.dedent(
        f"""
        import json, sys
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_lrkit_loads_neither_torch_nor_matplotlib() -> None:
    """`import lrkit` and its numpy-only packages (every submodule) stay free of torch/mpl."""
    loaded = loaded_after(
        """
        import importlib, pkgutil
        import lrkit, lrkit.schedules, lrkit.controllers, lrkit.tools
        for pkg in (lrkit.schedules, lrkit.controllers, lrkit.tools):
            for info in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."):
                importlib.import_module(info.name)
        """
    )
    assert loaded == []


def test_import_lrkit_tune_and_its_numpy_modules_load_neither() -> None:
    """`import lrkit.tune` and its numpy-only modules (rules, recipes, candidates, summaries)
    stay free of torch and matplotlib; the torch-side names are imported on first use."""
    loaded = loaded_after(
        """
        import lrkit.tune
        from lrkit.tune import candidates, recipes, rules, summary
        assert recipes.get("cosine", peak=0.1, total_steps=10)(0) == 0.1
        """
    )
    assert loaded == []


def test_lrkit_tune_lazy_names_import_torch_on_use() -> None:
    """The lazy names really resolve (the probe above is not passing because they are broken)."""
    loaded = loaded_after(
        """
        import lrkit.tune
        import lrkit.tune.search, lrkit.tune.finder  # submodules do not shadow the functions
        assert callable(lrkit.tune.find_lr) and callable(lrkit.tune.compare)
        """
    )
    assert "torch" in loaded


def test_cli_show_and_text_plot_do_not_load_matplotlib() -> None:
    """`lrkit show` and the terminal plot run without importing matplotlib or torch."""
    loaded = loaded_after(
        """
        import contextlib, io
        from lrkit.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["show", "warmup(cosine(1e-3, steps=90), steps=10)"]) == 0
            assert main(["plot", "cosine(1.0, steps=50)", "--width", "40"]) == 0
        """
    )
    assert loaded == []


def test_probe_sees_a_heavy_import() -> None:
    """The probe is not vacuous: it reports matplotlib once something imports it."""
    assert "matplotlib" in loaded_after("import matplotlib")
