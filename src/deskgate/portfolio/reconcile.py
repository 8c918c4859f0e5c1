"""The book against a venue: which assets differ, by how much, in USD. Pure."""

from __future__ import annotations

from deskgate.domain.venue import Mismatch

#: Quantities closer than this are equal (venues round balances).
QTY_EPSILON = 1e-9


def reconcile(
    book: dict[str, float],
    venue: dict[str, float],
    baseline: dict[str, float],
    prices: dict[str, float],
    assets: set[str],
    tolerance_usd: float,
) -> list[Mismatch]:
    """Every asset of `assets` whose venue total differs from the book plus the acknowledged
    baseline by more than `tolerance_usd`; an asset without a price differs when its
    quantities do. `venue` holds only the assets the executor could read settled."""
    out = []
    for asset in sorted(assets):
        if asset not in venue and asset not in book:
            continue
        if asset not in venue:
            continue  # not read this time (an order of ours is still open on it)
        held, ours, outside = venue.get(asset, 0.0), book.get(asset, 0.0), baseline.get(asset, 0.0)
        diff = held - ours - outside
        if abs(diff) <= QTY_EPSILON * max(1.0, abs(held)):
            continue
        price = prices.get(asset)
        usd = abs(diff) * price if price and price > 0 else None
        if usd is not None and usd <= tolerance_usd:
            continue
        out.append(Mismatch(asset=asset, book=ours, venue=held, baseline=outside, difference=diff, difference_usd=usd))
    return out
