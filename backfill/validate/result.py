"""Result objects of a validation run: one per file, one per run; text and JSON from the same data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["FileResult", "FileStatus", "InvariantError", "RunResult"]

FileStatus = Literal["validated", "failed", "unreadable", "header"]
"""`validated`: outputs written (possibly with rejects); `failed`: reject rate above the
maximum (valid file withheld); `unreadable`: encoding/IO problem; `header`: no contract fits or
required columns are missing."""


class InvariantError(AssertionError):
    """Rows read != valid + rejected + excluded: a bug in the validator, never bad input."""


@dataclass
class FileResult:
    """What happened to one input file. `valid_path` is what may be shipped (None if failed)."""

    path: Path
    status: FileStatus
    message: str = ""
    kind: str | None = None
    contract_confirmed: bool | None = None
    why: str = ""
    era: str | None = None
    encoding: str = "utf-8"
    encoding_note: str = ""
    bom: bool = False
    line_endings: str = ""
    line_end_note: str = ""
    """Set when the lines were read other than as written (CR-only line ends read as LF)."""
    missing_columns: list[str] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    rejected_by_rule: dict[str, int] = field(default_factory=dict)
    warnings_by_rule: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    """`exact` (excluded copies), `superseded` (older versions excluded, contract `newest_by`)
    and `conflicting` (rejected rows sharing an identity)."""
    references_checked: list[str] = field(default_factory=list)
    """Cross-file rules evaluated against the run's other files (their counts are in
    `rejected_by_rule` / `warnings_by_rule`)."""
    references_not_checked: dict[str, str] = field(default_factory=dict)
    """Cross-file rule -> why it was not evaluated (e.g. no file of the referenced kind)."""
    reject_rate: float = 0.0
    max_reject_rate: float = 0.0
    bytes: int = 0
    seconds: float = 0.0
    passes: dict[str, float] = field(default_factory=dict)
    """Seconds per pass: structure (bytes + records), duplicates, rules (evaluate + write)."""
    valid_path: Path | None = None
    rejects_path: Path | None = None
    warnings_path: Path | None = None
    excluded_path: Path | None = None
    report_path: Path | None = None

    @property
    def rows_excluded(self) -> int:
        """All excluded rows, whatever the reason."""
        return sum(self.excluded.values())

    @property
    def ok(self) -> bool:
        """Validated and under the maximum reject rate: the valid file may be shipped."""
        return self.status == "validated"

    def check_invariant(self) -> None:
        """Raise InvariantError unless rows read = valid + rejected + excluded."""
        if self.status in ("validated", "failed"):
            total = self.rows_valid + self.rows_rejected + self.rows_excluded
            if total != self.rows_read:
                raise InvariantError(
                    f"{self.path}: rows read {self.rows_read} != valid {self.rows_valid} + "
                    f"rejected {self.rows_rejected} + excluded {self.rows_excluded}"
                )

    def asdict(self) -> dict[str, Any]:
        """JSON-ready dict (paths as strings, throughput added)."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, Path):
                d[k] = str(v)
        d["rows_excluded"] = self.rows_excluded
        d["rows_per_s"] = round(self.rows_read / self.seconds) if self.seconds else None
        d["mb_per_s"] = round(self.bytes / 1e6 / self.seconds, 1) if self.seconds else None
        return d


@dataclass
class RunResult:
    """All files of one `validate` call."""

    files: list[FileResult]
    out_dir: Path
    report_path: Path | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Every file validated under its maximum reject rate."""
        return all(f.ok for f in self.files)

    def asdict(self) -> dict[str, Any]:
        """JSON-ready dict of the run."""
        return {
            "ok": self.ok,
            "out_dir": str(self.out_dir),
            "seconds": round(self.seconds, 3),
            "files": [f.asdict() for f in self.files],
        }
