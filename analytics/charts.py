"""Inline SVG line charts for the admin dashboard: no JavaScript, no external assets."""

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# Series drawn on the volume charts, with colours that stay apart for colour-blind readers.
SERIES = (("sent", "#1f77b4"), ("delivered", "#2ca02c"), ("bounced", "#d62728"))


def _nice_max(value: int) -> int:
    """Round the y-axis top up to 1, 2 or 5 times a power of ten."""
    if value <= 0:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def volume_chart(days: list[dict], *, width: int = 760, height: int = 220, compact: bool = False) -> SafeString:
    """``days``: [{"date": date, "sent": n, "delivered": n, "bounced": n}, ...] in order."""
    left, right, top, bottom = (4, 4, 4, 4) if compact else (52, 12, 12, 28)
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_max(max((day[name] for day in days for name, _ in SERIES), default=0))
    step = plot_w / max(len(days) - 1, 1)

    def x(index: int) -> float:
        return left + index * step

    def y(value: int) -> float:
        return top + plot_h - (value / top_value) * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" class="volume-chart">']
    if days:
        summary = ", ".join(f"{name} {sum(d[name] for d in days)}" for name, _ in SERIES)
        parts.append(f"<title>{escape(days[0]['date'])} to {escape(days[-1]['date'])}: {summary}</title>")
    if not compact:
        for fraction in (0, 0.5, 1):
            value = round(top_value * fraction)
            parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                         f'stroke="#ddd"/><text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end" '
                         f'font-size="11" fill="#666">{value}</text>')
        for index in sorted({0, len(days) // 2, len(days) - 1}) if days else []:
            anchor = "start" if index == 0 else "end" if index == len(days) - 1 else "middle"
            parts.append(f'<text x="{x(index):.1f}" y="{height - 8}" text-anchor="{anchor}" font-size="11" '
                         f'fill="#666">{escape(days[index]["date"])}</text>')
    for name, colour in SERIES:
        points = " ".join(f"{x(i):.1f},{y(day[name]):.1f}" for i, day in enumerate(days))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="{1.5 if compact else 2}" '
                     f'points="{points}"><title>{name}</title></polyline>')
        if not compact and len(days) <= 92:
            for i, day in enumerate(days):
                parts.append(f'<circle cx="{x(i):.1f}" cy="{y(day[name]):.1f}" r="2.5" fill="{colour}">'
                             f'<title>{escape(day["date"])} {name}: {day[name]}</title></circle>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text above is escaped or a number
