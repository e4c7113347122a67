"""PNG charts of the Telco section of the insights: order cycle times and stock per supplier.

Drawn like the domain-free charts of :mod:`consortia.analytics.plots` (same size, colours
and titles); ``consortia insights --plot`` writes ``CHARTS`` then :data:`TELCO_CHARTS`.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from consortia.analytics.insights import Insights, quantile
from consortia.analytics.plots import (
    OUTCOME_COLOURS,
    Chart,
    chart_figure,
    duration_unit,
    legend_outside,
)
from consortia.telco.insights import OrderInsights

__all__ = ["TELCO_CHARTS"]


#: Below this many closed orders the cycle times are drawn one dot per order.
_FEW = 10
_BINS = 12


def _orders_count(n: int) -> str:
    return f"{n} order" if n == 1 else f"{n} orders"


def _orders(ins: Insights) -> Figure | None:
    telco = OrderInsights.of(ins)
    if telco is None:
        return None
    closed = [o for o in telco.orders_all if o.cycle_s is not None]
    if not closed:
        return None
    fig, (ax,) = chart_figure(ins, "Order cycle times (placeOrder to completed or cancelled)")
    divisor, unit = duration_unit([o.cycle_s or 0.0 for o in closed])
    groups = [
        ("completed", OUTCOME_COLOURS["committed"]),
        ("cancelled", OUTCOME_COLOURS["refused"]),
    ]
    data = [[(o.cycle_s or 0.0) / divisor for o in closed if o.state == s] for s, _ in groups]
    labels = [f"{s} ({_orders_count(len(d))})" for (s, _), d in zip(groups, data, strict=True)]
    top = max(max(d, default=0.0) for d in data)
    if len(closed) < _FEW:
        # Too few for a histogram (one bar, and an axis around nothing): each order a dot.
        for row, (values, (_, colour), label) in enumerate(zip(data, groups, labels, strict=True)):
            ax.scatter(values, [row] * len(values), s=80, color=colour, label=label, zorder=3)
        ax.set_yticks(range(len(groups)), [s for s, _ in groups])
        ax.set_ylim(-0.8, len(groups) - 0.2)
    else:
        edges = [top * i / _BINS for i in range(_BINS + 1)] if top > 0 else _BINS
        ax.hist(data, bins=edges, stacked=True, color=[c for _, c in groups], label=labels)
        ax.set_ylabel("orders (count)")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    # Room on the right for the median's label.
    ax.set_xlim(left=0, right=max(top * 1.25, 1e-9))
    for values, (_, colour) in zip(data, groups, strict=True):
        median = quantile(values, 0.5)
        if median is not None:
            ax.axvline(median, color="black", ls="--", lw=1.5, zorder=3)
            ax.annotate(
                f" median {median:.1f} {unit}",
                (median, 1.0),
                xycoords=("data", "axes fraction"),
                va="top",
                color=colour,
                fontsize=9,
            )
    ax.plot([], [], "k--", lw=1.5, label="median")
    still_open = sum(1 for o in telco.orders_all if o.cycle_s is None)
    ax.set_xlabel(f"cycle time ({unit})")
    ax.set_title(
        f"{_orders_count(len(closed))} closed; {_orders_count(still_open)} still open (not shown)"
    )
    legend_outside(ax)
    return fig


def _stock(ins: Insights) -> Figure | None:
    telco = OrderInsights.of(ins)
    if telco is None:
        return None
    lines = [*telco.stock, telco.stock_total] if telco.stock_total.reserved else list(telco.stock)
    if not lines:
        return None
    fig, (ax,) = chart_figure(ins, "Where each supplier's reserved stock went (leak in red)")
    names = [s.supplier for s in lines][::-1]
    parts = [
        ("consumed (shipped)", OUTCOME_COLOURS["committed"], [s.consumed for s in lines]),
        ("released (cancelled)", "#90a4ae", [s.released for s in lines]),
        ("pending (not shipped yet)", OUTCOME_COLOURS["pending"], [s.pending for s in lines]),
        ("LEAK (unaccounted)", "#d50000", [max(s.leak, 0) for s in lines]),
    ]
    offset = [0] * len(names)
    for label, colour, values in parts:
        counts = values[::-1]
        ax.barh(names, counts, left=offset, color=colour, label=label)
        offset = [o + c for o, c in zip(offset, counts, strict=True)]
    for y, line in enumerate(lines[::-1]):
        text = f" reserved {line.reserved}" + (
            f", returned {line.returned}" if line.returned else ""
        )
        text += f", LEAK {line.leak}" if line.leak else ""
        ax.annotate(text, (offset[y], y), va="center", fontsize=9)
    ax.set_xlabel("units reserved (count)")
    ax.set_xlim(right=max(offset) * 1.3 + 1)
    legend_outside(ax)
    return fig


#: File name -> chart builder, after the domain-free charts.
TELCO_CHARTS: dict[str, Chart] = {"orders.png": _orders, "stock.png": _stock}
