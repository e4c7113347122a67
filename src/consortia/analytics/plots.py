"""PNG charts of :class:`~consortia.analytics.insights.Insights`, for people to look at.

Built on ``matplotlib.figure.Figure`` with the Agg canvas, never ``pyplot``: no display, no
global state, safe in a server thread. Each chart says in its title what it shows and for
whom, labels its axes with units, and keeps one colour per meaning (an outcome is always
the same colour), so a reader compares charts without re-reading legends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.patheffects import withStroke
from matplotlib.ticker import MaxNLocator

from consortia.analytics.insights import OUTCOMES, Insights, bucket_label, quantile

__all__ = [
    "CHARTS",
    "OUTCOME_COLOURS",
    "Chart",
    "chart_figure",
    "duration_unit",
    "legend_outside",
    "write_charts",
]

#: One colour per outcome, kept across every chart.
OUTCOME_COLOURS = {
    "committed": "#2e7d32",
    "ok": "#64b5f6",
    "hidden": "#90a4ae",
    "pending": "#f9a825",
    "refused": "#e53935",
    "failed": "#8e24aa",
}
#: Actions beyond this many are drawn together as "other".
_TOP = 7
_OTHER_COLOUR = "#b0b0b0"
#: Colours of the top actions: matplotlib's tab10 without its red (refused) and grey (other).
_ACTION_COLOURS = ("C0", "C1", "C2", "C4", "C5", "C6", "C8", "C9")
_SIZE = (11.0, 5.6)
_DPI = 110


def duration_unit(seconds: Sequence[float]) -> tuple[float, str]:
    """(divisor, unit name) that shows these durations as numbers of a readable size."""
    top = max(seconds, default=0.0)
    for divisor, unit in ((86400.0, "days"), (3600.0, "hours"), (60.0, "minutes")):
        if top >= 2 * divisor:
            return divisor, unit
    return 1.0, "seconds"


def chart_figure(ins: Insights, title: str, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    """A blank chart titled for ``ins``'s consortium and viewer, with ``ncols`` axes."""
    fig = Figure(figsize=_SIZE, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    scope = "all members" if ins.viewer.full else f"totals + {ins.viewer.member}'s own rows"
    fig.suptitle(f"{title}\nconsortium {ins.consortium}, as seen by {ins.viewer.member} ({scope})")
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(alpha=0.3)
        ax.set_axisbelow(True)
    return fig, axes


def _days(times: Sequence[float]) -> list[float]:
    """Unix seconds as matplotlib date numbers (days since its 1970 epoch, UTC)."""
    return [t / 86400.0 for t in times]


def _time_axis(ax: Axes, ticks: int = 10) -> None:
    locator = AutoDateLocator(minticks=3, maxticks=ticks)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("time (UTC)")


def legend_outside(ax: Axes, title: str | None = None) -> None:
    """Legend to the right of the plot, where it never hides a bar."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title=title)


def _requests(ins: Insights) -> Figure | None:
    if not ins.timeline:
        return None
    fig, (ax,) = chart_figure(ins, "Requests over time, by action")
    top = [a.action for a in ins.actions[:_TOP]]
    starts = _days([b.start for b in ins.timeline])
    width = ins.bucket_s * 0.9 / 86400.0
    bottom = [0] * len(ins.timeline)
    series = [(name, [b.by_action.get(name, 0) for b in ins.timeline]) for name in top]
    rest = [sum(n for a, n in b.by_action.items() if a not in top) for b in ins.timeline]
    if any(rest):
        series.append(("other", rest))
    for index, (name, counts) in enumerate(series):
        colour = _OTHER_COLOUR if name == "other" else _ACTION_COLOURS[index]
        ax.bar(starts, counts, width=width, bottom=bottom, label=name, color=colour, align="edge")
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    # The viewer's own requests: one mark across each bucket's bar. A line from one
    # bucket's middle to the next would invent counts between buckets.
    ax.hlines(
        [b.own for b in ins.timeline],
        starts,
        [s + width for s in starts],
        colors="black",
        lw=2.5,
        label=f"{ins.viewer.member} (you)",
        path_effects=[withStroke(linewidth=4.5, foreground="white")],
    )
    ax.set_ylabel(f"requests per {bucket_label(ins.bucket_s)}")
    _time_axis(ax)
    legend_outside(ax, "action")
    return fig


def _refusals(ins: Insights) -> Figure | None:
    refused = [a for a in ins.actions if a.codes]
    if not refused:
        return None
    fig, (left, right) = chart_figure(ins, "Refused and failed requests, by error code", ncols=2)
    codes = [c for c, _ in sum((Counter(a.codes) for a in refused), Counter()).most_common()]
    colour = {c: f"C{i % 10}" for i, c in enumerate(codes)}
    starts = _days([b.start for b in ins.timeline])
    width = ins.bucket_s * 0.9 / 86400.0
    bottom = [0] * len(ins.timeline)
    for code in codes:
        counts = [b.refused_by_code.get(code, 0) for b in ins.timeline]
        left.bar(starts, counts, width=width, bottom=bottom, color=colour[code], align="edge")
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    left.set_title("over time (consortium-wide)")
    left.set_ylabel(f"refusals per {bucket_label(ins.bucket_s)}")
    _time_axis(left, ticks=5)
    names = [a.action for a in refused][::-1]
    offset = [0] * len(names)
    for code in codes:
        counts = [next(a for a in refused if a.action == n).codes.get(code, 0) for n in names]
        right.barh(names, counts, left=offset, color=colour[code], label=code)
        offset = [o + c for o, c in zip(offset, counts, strict=True)]
    right.set_title("per action (consortium-wide)")
    right.set_xlabel("refusals (count)")
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend_outside(right, "error code")
    return fig


def _members(ins: Insights) -> Figure | None:
    rows = [*ins.members, *([ins.others] if ins.others else [])]
    if not rows:
        return None
    fig, (ax,) = chart_figure(ins, "Requests per member, by outcome")
    names = [m.member for m in rows][::-1]
    offset = [0] * len(names)
    for outcome in OUTCOMES:
        counts = [m.outcomes.get(outcome, 0) for m in rows][::-1]
        if any(counts):
            ax.barh(names, counts, left=offset, color=OUTCOME_COLOURS[outcome], label=outcome)
            offset = [o + c for o, c in zip(offset, counts, strict=True)]
    for y, total in enumerate(offset):
        ax.annotate(f" {total}", (total, y), va="center", fontsize=9)
    ax.set_xlabel("requests (count)")
    ax.set_xlim(right=max(offset) * 1.1 + 1)
    legend_outside(ax, "outcome")
    return fig


def _votes(ins: Insights) -> Figure | None:
    if not ins.votes or ins.last is None:
        return None
    fig, (ax,) = chart_figure(ins, "How long votes took, per action (each dot is one vote)")
    age = [v.seconds if v.seconds is not None else ins.last - v.pending for v in ins.votes]
    divisor, unit = duration_unit(age)
    actions = sorted({v.action for v in ins.votes})
    styles = {
        "approved": ("o", OUTCOME_COLOURS["committed"]),
        "rejected": ("X", OUTCOME_COLOURS["refused"]),
        "failed": ("s", OUTCOME_COLOURS["failed"]),
        "open": ("o", "none"),
    }
    for outcome, (marker, face) in styles.items():
        points = [
            (a / divisor, actions.index(v.action))
            for v, a in zip(ins.votes, age, strict=True)
            if v.outcome == outcome
        ]
        if points:
            label = "still open (age so far)" if outcome == "open" else outcome
            ax.scatter(
                [p[0] for p in points],
                [p[1] for p in points],
                s=70,
                marker=marker,
                facecolors=face,
                edgecolors=OUTCOME_COLOURS["pending"] if outcome == "open" else face,
                linewidths=1.5,
                label=label,
                zorder=3,
            )
    for y, action in enumerate(actions):
        done = [
            v.seconds / divisor for v in ins.votes if v.action == action and v.seconds is not None
        ]
        median = quantile(done, 0.5)
        if median is not None:
            ax.plot([median, median], [y - 0.3, y + 0.3], color="black", lw=2)
    ax.plot([], [], color="black", lw=2, label="median")
    ax.set_yticks(range(len(actions)), actions)
    ax.set_ylim(-0.7, len(actions) - 0.3)
    ax.set_xlim(left=0)
    ax.set_xlabel(f"time from pending to decision ({unit})")
    legend_outside(ax)
    return fig


#: A chart builder: None when it has nothing to show.
Chart = Callable[[Insights], Figure | None]

#: File name -> chart builder of the domain-free figures; a template pack adds its own
#: (``consortia.telco.plots.TELCO_CHARTS``) through ``write_charts(..., charts)``.
CHARTS: dict[str, Chart] = {
    "requests.png": _requests,
    "refusals.png": _refusals,
    "members.png": _members,
    "votes.png": _votes,
}


def write_charts(
    ins: Insights, folder: Path, charts: Mapping[str, Chart] | None = None
) -> list[Path]:
    """Write every chart (default: :data:`CHARTS`) that has something to show into
    ``folder``, in order; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in (CHARTS if charts is None else charts).items():
        fig = build(ins)
        if fig is None:
            continue
        path = folder / name
        fig.savefig(path)
        written.append(path)
    return written
