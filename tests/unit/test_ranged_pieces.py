"""The interval arithmetic of ranged downloads: what the record keeps, what a rerun fetches."""

from __future__ import annotations

from updl.sdk.ranged import _holes, _merged, _split


def test_intervals_are_merged_sorted_and_without_empty_ones() -> None:
    assert _merged([(10, 20), (0, 5), (5, 7), (15, 30), (40, 40)]) == [(0, 7), (10, 30)]


def test_holes_are_what_the_intervals_leave_out() -> None:
    assert _holes([[0, 7], [10, 30]], 35) == [(7, 10), (30, 35)]
    assert _holes([], 5) == [(0, 5)]
    assert _holes([[0, 5]], 5) == []


def test_holes_are_cut_into_pieces_of_at_most_the_piece_size() -> None:
    assert _split([(7, 10), (30, 45)], 8) == [(7, 10), (30, 38), (38, 45)]
