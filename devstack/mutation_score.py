"""`make mutate`'s summary: mutmut's results per function and the mutation score.

Reads ``mutmut results --all true`` on stdin (lines ``module.x_function__mutmut_N:
status``) and prints, per function, how many mutants the unit tests killed, how
many survived and how many no unit test reaches (I/O code such as the send
service's methods, which the integration tests cover). The score is killed over
killed + survived: mutants the unit tests can see.
"""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable

__all__ = ["main", "tally"]

_LINE = re.compile(r"^\s*(?P<function>\S+?)__mutmut_\d+:\s*(?P<status>.+?)\s*$")


def tally(lines: Iterable[str]) -> dict[str, Counter[str]]:
    """Statuses per mutated function, in mutmut's own words (killed, survived, ...)."""
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for line in lines:
        found = _LINE.match(line)
        if found:
            name = found["function"].replace("xǁ", "").replace("ǁ", ".").replace(".x_", ".")
            per[name][found["status"]] += 1
    return dict(per)


def main() -> int:
    per = tally(sys.stdin)
    if not per:
        print("no mutmut results on stdin", file=sys.stderr)
        return 1
    width = max(len(name) for name in per)
    print(f"{'function':{width}}  killed  survived  no tests  other")
    totals: Counter[str] = Counter()
    for name, counts in sorted(per.items()):
        totals.update(counts)
        other = sum(n for s, n in counts.items() if s not in ("killed", "survived", "no tests"))
        print(
            f"{name:{width}}  {counts['killed']:>6}  {counts['survived']:>8}  "
            f"{counts['no tests']:>8}  {other:>5}"
        )
    seen = totals["killed"] + totals["survived"]
    score = totals["killed"] / seen if seen else 0.0
    print(
        f"\nmutation score {score:.1%}: {totals['killed']} killed of {seen} mutants the unit "
        f"tests reach ({totals['no tests']} more in code no unit test runs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
