"""pass@k: the chance that at least one of k samples solves a problem, estimated without bias.

With ``n`` samples of a problem of which ``c`` are correct, Chen et al. (2021, "Evaluating Large
Language Models Trained on Code", https://arxiv.org/abs/2107.03374) estimate

    pass@k = 1 - C(n - c, k) / C(n, k)

(the chance that k samples drawn without replacement from the n are not all wrong), and average
it over problems. The ratio of binomials is computed as the product
``prod_{i = n-c+1}^{n} (1 - k / i)``, which never overflows and loses no precision for large n.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence
from typing import Any


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with `n` samples of which `c` are correct (1 <= k <= n)."""
    n, c, k = (_count(value, name) for value, name in ((n, "n"), (c, "c"), (k, "k")))
    if c > n:
        raise ValueError(f"c (correct samples) cannot exceed n (samples): c={c}, n={n}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and n={n}, got {k}")
    if n - c < k:  # every draw of k samples contains a correct one
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def mean_pass_at_k(counts: Iterable[tuple[int, int]], ks: Sequence[int] = (1,)) -> dict[int, float]:
    """pass@k averaged over problems, for every k in `ks`.

    `counts` holds one ``(n, c)`` pair per problem (samples, correct samples). A k larger than
    some problem's n is left out of the result, since it cannot be estimated for that problem.
    Raises ValueError when there are no problems.
    """
    pairs = [(_count(n, "n"), _count(c, "c")) for n, c in counts]
    if not pairs:
        raise ValueError("pass@k needs at least one problem")
    fewest = min(n for n, _ in pairs)
    return {
        k: sum(pass_at_k(n, c, k) for n, c in pairs) / len(pairs)
        for k in (_count(k, "k") for k in ks)
        if 1 <= k <= fewest
    }


def _count(value: Any, name: str) -> int:
    """`value` as a non-negative int; TypeError or ValueError naming `name` otherwise."""
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if number < 0:
        raise ValueError(f"{name} must be >= 0, got {number}")
    return number
