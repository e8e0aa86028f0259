"""What did not make it: one record per input that ingest or inference could not use, and why.

    python -c "from pipelines.rejects import Reject; print(Reject('corrupt', 'bad header', 'x'))"

Both pipelines write these as JSON lines (`rejects.jsonl`, `rejects-*.jsonl`), so every input
ends in an output or in a rejects record with a reason, and the counts add up.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Reject:
    """An input that did not make it into the dataset, and why."""

    reason: str
    detail: str
    key: str = ""
    image: str | None = None
    mask: str | None = None

    def to_json_dict(self) -> dict:
        return {
            "key": self.key,
            "image": self.image,
            "mask": self.mask,
            "reason": self.reason,
            "detail": self.detail,
        }
