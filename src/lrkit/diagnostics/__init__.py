"""Training diagnostics: what a run's learning rate is doing wrong, with evidence and the fix.

numpy only (no torch): every detector is a small pure function over a :class:`RunLog` (the
recorded series), returning a :class:`Finding` or None, so it runs on logs from any framework.
:func:`diagnose` runs them all and ranks the findings. :class:`lrkit.torch.Monitor` records a
``RunLog`` from a PyTorch loop; :mod:`lrkit.diagnostics.io` reads CSV, JSON-lines and
TensorBoard logs; ``lrkit diagnose LOG`` prints the findings and writes an HTML page.
See ``docs/diagnostics.md`` for each detector's rule.
"""

from lrkit.diagnostics._diagnose import DETECTORS, diagnose, healthy
from lrkit.diagnostics._finding import KINDS, Finding
from lrkit.diagnostics._log import RunLog
from lrkit.diagnostics._rules_loss import diverged, lr_too_high, lr_too_low, warmup_too_short
from lrkit.diagnostics._rules_schedule import decay_too_early, not_converged, plateau
from lrkit.diagnostics._rules_signals import exploding_gradients, layer_imbalance, overfitting

__all__ = [
    "DETECTORS",
    "KINDS",
    "Finding",
    "RunLog",
    "decay_too_early",
    "diagnose",
    "diverged",
    "exploding_gradients",
    "healthy",
    "layer_imbalance",
    "lr_too_high",
    "lr_too_low",
    "not_converged",
    "overfitting",
    "plateau",
    "warmup_too_short",
]
