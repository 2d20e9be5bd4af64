"""Quality plots as SVG, drawn server-side with matplotlib from project_quality's figures.

matplotlib is imported inside the functions (the web process pays for it only when a plot is
asked for) and used through Figure objects, never pyplot: pyplot keeps global state that two
requests in two threads would share. Text is written as paths (matplotlib's default), so a
username in a label can never become markup in the SVG.

Each plot is captioned once, by the page (plot_captions), not again inside the picture; axes
are fitted to the data (a single day of agreement spans that day, not matplotlib's default of
two years either side of a lone date).
"""
from __future__ import annotations

import io

PLOTS = ("agreement", "gold", "position")
WIDTH, HEIGHT = 6.4, 3.4
ACCENT, MUTED, BAD = "#3b5bdb", "#6b6b70", "#e03131"


def _figure(height: float = HEIGHT):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH, height), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", color=MUTED, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _svg(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    # No date in the metadata: the same figures give byte-identical SVG.
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def agreement_figure(quality: dict):
    """Krippendorff's alpha per day (or week) of completed units."""
    fig, ax = _figure()
    points = [p for p in quality["over_time"] if p["alpha"] is not None]
    if not points:
        _empty(ax, "Not enough overlapping judgments yet")
        return fig
    from datetime import date

    from datetime import timedelta

    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    x = [date.fromisoformat(p["period"]) for p in points]
    y = [p["alpha"] for p in points]
    ax.plot(x, y, marker="o", color=ACCENT, linewidth=1.8, markersize=4)
    ax.axhline(0.8, color=MUTED, linestyle="--", linewidth=0.8)
    ax.text(x[0], 0.81, "0.8: reliable", color=MUTED, fontsize=8, va="bottom")
    ax.set_ylim(min(-0.1, min(y) - 0.05), 1.05)
    ax.set_ylabel("Krippendorff's alpha")
    # The axis spans the data plus half a period either side.
    half = timedelta(days=points[0]["days"]) / 2 + timedelta(hours=12) * (points[0]["days"] == 1)
    ax.set_xlim(x[0] - half, x[-1] + half)
    locator = AutoDateLocator(minticks=2, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    return fig


def gold_figure(quality: dict):
    """Per rater: accuracy on gold (or, without gold answers, agreement with the consensus)
    against judgments per hour. Paused raters are drawn in red."""
    fig, ax = _figure()
    raters = [r for r in quality["raters"] if r["judgments_per_hour"] is not None]
    use_gold = any(r["gold_accuracy"] is not None for r in raters)
    key = "gold_accuracy" if use_gold else "consensus_agreement"
    raters = [r for r in raters if r[key] is not None]
    if not raters:
        _empty(ax, "No rater with a throughput and an accuracy yet")
        return fig
    x = [r["judgments_per_hour"] for r in raters]
    y = [r[key] for r in raters]
    colors = [BAD if r["paused"] else ACCENT for r in raters]
    sizes = [20 + 80 * min(1.0, r["judgments"] / max(1, max(q["judgments"] for q in raters))) for r in raters]
    ax.scatter(x, y, c=colors, s=sizes, alpha=0.8, edgecolors="white", linewidths=0.5)
    if len(raters) <= 30:
        for r, xi, yi in zip(raters, x, y):
            ax.annotate(r["username"][:16], (xi, yi), xytext=(4, 3), textcoords="offset points", fontsize=7, color=MUTED)
    ax.set_xlabel("judgments per active hour")
    ax.set_xlim(0, max(x) * 1.15)
    ax.set_ylabel("accuracy on gold" if use_gold else "agreement with consensus")
    ax.set_ylim(-0.05, 1.05)
    return fig


def _unlikely_by_chance(share: float, n: int, expected: float) -> bool:
    """A two-sided binomial test at p < 0.01 (normal approximation): a rater who picks the
    first card 60 % of 10 times is not biased, 60 % of 500 times is."""
    if n < 10 or not 0 < expected < 1:
        return False
    z = (share - expected) / ((expected * (1 - expected) / n) ** 0.5)
    return abs(z) > 2.576


def position_figure(quality: dict):
    """Per rater: share of picks of the first (left) card, against the share expected by chance."""
    raters = [r for r in quality["raters"] if r["first_card_share"] is not None][:40]
    fig, ax = _figure(height=max(HEIGHT, 0.9 + 0.24 * len(raters)))
    if not raters:
        _empty(ax, "No judgment with a single winner yet")
        return fig
    expected = quality["summary"]["first_card_expected"] or 0.5
    names = [r["username"][:16] for r in raters][::-1]
    shares = [r["first_card_share"] for r in raters][::-1]
    colors = [BAD if _unlikely_by_chance(r["first_card_share"], r["first_card_judgments"], expected) else ACCENT for r in raters][::-1]
    ax.barh(names, shares, color=colors, height=0.6)
    ax.axvline(expected, color=MUTED, linestyle="--", linewidth=0.9)
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"share of picks of the first / left card (chance: {expected:.0%})")
    ax.tick_params(axis="y", labelsize=8)
    return fig


def plot_captions(quality: dict) -> dict[str, str]:
    """The one caption of each plot, for the page under the picture."""
    over_time = quality["over_time"]
    unit = "week" if over_time and over_time[0]["days"] > 1 else "day"
    return {
        "agreement": f"Agreement per {unit} of completed items (Krippendorff's alpha, {quality['summary']['level']}); dashed: 0.8, usually called reliable.",
        "gold": "Accuracy vs throughput per rater: accuracy on gold items (or agreement with the consensus where there are none) against judgments per active hour; dot size: judgments; red: paused.",
        "position": "Position bias per rater: share of picks of the first (left) card; dashed: chance; red: too far from chance to be luck (p < 0.01).",
    }


FIGURES = {"agreement": agreement_figure, "gold": gold_figure, "position": position_figure}


def quality_plot(name: str, quality: dict) -> bytes:
    return _svg(FIGURES[name](quality))
