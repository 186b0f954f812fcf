"""What data a run trains and tests on, and whether it is the paper's.

Every experiment that reads a dataset describes it, before any training, as
:class:`DataFacts`: the source, the number of items per split, whether the pixels are lossy,
whether the data was generated here, and ``differs``: each way it is not the data the paper
used (empty = the paper's data). The runner refuses a paper-scale run whose data differs
(one line naming the first difference and what to do; ``allow_partial_data=true`` runs it
anyway), records the facts in every run's record (``data``), and the report states them in
table and figure captions when they are not the paper's.

A leaf module: it imports nothing from picard but the errors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class DataFacts:
    dataset: str  # e.g. "CIFAR-10", "Navier-Stokes", "LRGB PascalVOC-SP"
    source: str  # where the items come from (loader / file kind)
    splits: dict[str, int] = field(default_factory=dict)  # items per split as the run uses them
    lossy: bool = False  # pixels decoded from a lossy format
    generated: bool = False  # produced on this machine (e.g. by `picard data navier-stokes`)
    label: str = ""  # one phrase for captions, e.g. "CIFAR-10: 10,000-image JPEG-decoded subset"
    differs: list[str] = field(default_factory=list)  # how it is not the paper's data ([] = it is)
    remedy: str = ""  # how to get the paper's data
    file: str | None = None

    @property
    def is_paper(self) -> bool:
        return not self.differs

    def as_record(self) -> dict:
        return asdict(self) | {"paper": self.is_paper}


def refusal(facts: DataFacts, cell: str) -> str:
    """The one line a paper-scale run on other data stops with."""
    more = f" (and {len(facts.differs) - 1} more difference(s))" if len(facts.differs) > 1 else ""
    remedy = f"; {facts.remedy}" if facts.remedy else ""
    return (
        f"--scale paper, cell {cell}: this is not the paper's data: {facts.differs[0]}{more}{remedy}; "
        f"or add allow_partial_data=true to run on it anyway (tables and figures then say which data they used)"
    )


def caption(records: list[dict]) -> str:
    """'' when every record ran on the paper's data (or says nothing), else the labels of the data used."""
    labels = sorted(
        {
            (r.get("data") or {}).get("label") or ""
            for r in records
            if isinstance(r.get("data"), dict) and not r["data"].get("paper", True)
        }
        - {""}
    )
    return f"data: {'; '.join(labels)} (not the paper's data)" if labels else ""
