"""The --delete threshold of ``updl sync``: more than 100, or more than 10 that are also more than 10%."""

from __future__ import annotations

import pytest

from updl.sdk.sync import deletions_refused


@pytest.mark.parametrize(
    ("deletions", "existing", "refused"),
    [
        (0, 0, False),
        (10, 10, False),  # ten are always allowed, even all of them
        (11, 200, False),  # 5.5%
        (11, 100, True),  # 11%
        (100, 5000, False),
        (101, 100_000, True),  # more than 100 always needs --force
    ],
)
def test_threshold(deletions: int, existing: int, refused: bool) -> None:
    assert deletions_refused(deletions, existing) is refused
