"""Matrix expansion: one asset per combination, as CI matrices do it.

A matrix is a mapping of keys to lists of values, plus two optional lists:

* ``exclude``: each entry drops every combination that matches all of its keys;
* ``include``: each entry is merged into every (non-excluded) combination whose
  *matrix* values it matches, adding its other keys; an entry that matches no
  combination is added as a combination of its own. This is GitHub Actions' rule
  (https://docs.github.com/en/actions/using-jobs/using-a-matrix-for-your-jobs).

Combinations come in key order, the last key varying fastest
(``{a: [1, 2], b: [x, y]}`` gives a1-bx, a1-by, a2-bx, a2-by).

:func:`count_combinations` gives an upper bound arithmetically, so a matrix that
would expand to millions of assets is refused before a single combination exists.
"""

from __future__ import annotations

import itertools
from typing import Any, Iterator, Mapping

__all__ = [
    "RESERVED_KEYS",
    "count_combinations",
    "expand",
    "matrix_keys",
    "matrix_problems",
]

#: Keys of a matrix mapping that are not variables.
RESERVED_KEYS = frozenset({"exclude", "include"})


def matrix_keys(matrix: Mapping[str, Any]) -> list[str]:
    """The variable keys of a matrix, in the order written."""
    return [k for k in matrix if k not in RESERVED_KEYS]


def count_combinations(matrix: Mapping[str, Any] | None) -> int:
    """Upper bound on the combinations ``matrix`` gives (1 for no matrix).

    The product of the list lengths plus the number of ``include`` entries; excluded
    combinations are not subtracted (it is a bound, computed without expanding).
    """
    if not matrix:
        return 1
    keys = matrix_keys(matrix)
    product = 0
    if keys:
        product = 1
        for key in keys:
            values = matrix[key]
            product *= len(values) if isinstance(values, list) else 1
    include = matrix.get("include") or []
    return product + (len(include) if isinstance(include, list) else 0)


def matrix_problems(matrix: Mapping[str, Any]) -> Iterator[tuple[tuple[Any, ...], str, str]]:
    """Mistakes the schema cannot see, as ``(path inside the matrix, message, hint)``.

    ``exclude`` entries must use matrix keys only (else they can never match), and
    a matrix needs at least one key or one ``include`` entry.
    """
    keys = matrix_keys(matrix)
    if not keys and not matrix.get("include"):
        yield (), "the matrix has no keys", "add a key with a list of values, e.g. item: [a, b]"
    for i, row in enumerate(matrix.get("exclude") or []):
        if not isinstance(row, Mapping):
            continue
        for key in row:
            if key not in keys:
                yield (("exclude", i, key), f"exclude names '{key}', which is not a matrix key",
                       f"matrix keys: {', '.join(keys)}" if keys else "add the key to the matrix")


def expand(matrix: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Every combination of ``matrix`` as a dict of variables (``[{}]`` for no matrix).

    The caller checks :func:`count_combinations` first; this builds the list.
    """
    if not matrix:
        return [{}]
    keys = matrix_keys(matrix)
    combos: list[dict[str, Any]] = []
    if keys:
        lists = [matrix[k] for k in keys]
        excludes = [row for row in matrix.get("exclude") or [] if isinstance(row, Mapping)]
        for values in itertools.product(*lists):
            combo = dict(zip(keys, values))
            if any(_matches(combo, row) for row in excludes):
                continue
            combos.append(combo)
    base_count = len(combos)
    key_set = set(keys)
    for row in matrix.get("include") or []:
        if not isinstance(row, Mapping):
            continue
        matched = False
        for combo in combos[:base_count]:
            # An entry may not overwrite an original matrix value (it would match a
            # different combination); values added by earlier entries may change.
            if all(combo[k] == v for k, v in row.items() if k in key_set):
                combo.update({k: v for k, v in row.items() if k not in key_set})
                matched = True
        if not matched:
            combos.append(dict(row))
    return combos


def _matches(combo: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    return all(k in combo and combo[k] == v for k, v in row.items())
