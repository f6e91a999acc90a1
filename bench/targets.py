"""Issue 18's targets, judged from the figures one `make bench` run measured.

A target is a ratio against a peer measured in the same run (never an absolute
time), with a bound it must stay at or above (throughput) or at or below
(latency). Each bench script prints its verdicts as it finishes and appends them
to the file named by `HOOKYARD_BENCH_SUMMARY`; `python bench/targets.py FILE`
prints them all again as the last lines of `make bench`, so one run ends with
every figure, its target and "met" / "NOT met" in one place.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

#: Where a bench script appends its verdicts (one JSON object a line), when set.
SUMMARY_VARIABLE = "HOOKYARD_BENCH_SUMMARY"


@dataclass(frozen=True)
class Verdict:
    figure: str
    ratio: float
    bound: float
    #: True: the ratio must be >= bound (a rate); False: <= bound (a latency, memory).
    at_least: bool

    @property
    def met(self) -> bool:
        return self.ratio >= self.bound if self.at_least else self.ratio <= self.bound

    def line(self) -> str:
        sign = ">=" if self.at_least else "<="
        return f"{self.figure:62}{self.ratio:>7.2f}  target {sign} {self.bound:<5g} {'met' if self.met else 'NOT met'}"


def at_least(figure: str, value: float, peer: float, bound: float) -> Verdict:
    return Verdict(figure, value / peer, bound, at_least=True)


def at_most(figure: str, value: float, peer: float, bound: float) -> Verdict:
    return Verdict(figure, value / peer, bound, at_least=False)


def report(verdicts: list[Verdict]) -> None:
    """Print the verdicts and append them to the run's summary file, if there is one."""
    print("\ntargets (issue 18):")
    for verdict in verdicts:
        print("  " + verdict.line())
    path = os.environ.get(SUMMARY_VARIABLE)
    if path:
        with open(path, "ab") as summary:
            summary.writelines(orjson.dumps(asdict(v)) + b"\n" for v in verdicts)


def read(path: Path) -> list[Verdict]:
    return [Verdict(**orjson.loads(line)) for line in path.read_bytes().splitlines() if line.strip()]


def main() -> int:
    verdicts = read(Path(sys.argv[1]))
    met = sum(v.met for v in verdicts)
    print(f"\nmake bench: {met} of {len(verdicts)} targets met")
    for verdict in verdicts:
        print("  " + verdict.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
