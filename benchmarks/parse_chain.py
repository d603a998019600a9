"""Time ``lrkit.parse`` on long ``a * b * ...`` chains, against Python's own ``ast.parse`` of the
same text (the reference, measured in the same run), to show the parser is linear.

    python benchmarks/parse_chain.py [--repeat 5]

Prints, per chain length: the spec's size, the best-of-N time of ``lrkit.parse`` (tokens, tree,
and building every schedule), of ``ast.parse`` (the tree only; it gives up with a RecursionError
beyond a few thousand factors on Python 3.11), and their ratio.
"""

from __future__ import annotations

import argparse
import ast
import gc
import time

import lrkit


def best(fn: object, text: str, repeat: int) -> float | None:
    """Best-of-``repeat`` seconds of ``fn(text)``; None if it raises RecursionError."""
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        try:
            fn(text)  # type: ignore[operator]
        except RecursionError:
            return None
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'factors':>8} {'KB':>6} {'lrkit.parse ms':>15} {'ast.parse ms':>13} {'ratio':>6}")
    for n in (625, 1_250, 2_500, 5_000, 10_000):
        text = " * ".join(["constant(1.0)"] * n)
        ours = best(lrkit.parse, text, args.repeat)
        ref = best(lambda s: ast.parse(s, mode="eval"), text, args.repeat)
        ref_ms = "recursion" if ref is None else f"{ref * 1e3:.1f}"
        ratio = "-" if ref is None or ours is None else f"{ours / ref:.1f}"
        ours_ms = f"{ours * 1e3:.1f}" if ours is not None else "-"
        print(f"{n:>8} {len(text) / 1e3:>6.1f} {ours_ms:>15} {ref_ms:>13} {ratio:>6}")


if __name__ == "__main__":
    main()
