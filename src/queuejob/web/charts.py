"""The overview's chart of jobs done and failed per minute, drawn as inline SVG on the
server (no script, no network): this module computes its geometry, the template draws it."""

from __future__ import annotations

import datetime as dt
from typing import Any

#: the chart's ranges, in minutes
RANGES = {"hour": 60, "day": 1440}
WIDTH, HEIGHT = 760, 200
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 10, 24


def _nice(value: float) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50... at least ``value``."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _label(minute: int) -> str:
    return dt.datetime.fromtimestamp(minute * 60, dt.UTC).strftime("%H:%M")


def throughput_chart(data: dict[str, Any], span: str) -> dict[str, Any]:
    done, failed = data["done"], data["failed"]
    count = data["minutes"]
    first = data["first_minute"]
    top = _nice(max([*done, *failed, 1]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(count - 1, 1)

    def x(index: int) -> float:
        return LEFT + index * step

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / top)

    def line(values: list[int]) -> str:
        return " ".join(f"{x(index):.1f},{y(value):.1f}" for index, value in enumerate(values))

    base = TOP + plot_h
    every = 10 if span == "hour" else 180
    ticks = [{"x": round(x(index), 1), "label": _label(first + index)}
             for index in range(count) if (first + index) % every == 0]
    hover = []
    if span == "hour":
        # one hover target per minute, its numbers in a <title> (a tooltip, no script)
        hover = [{"x": round(x(index) - step / 2, 1), "width": round(step, 1),
                  "title": f"{_label(first + index)} UTC: {done[index]} done, "
                           f"{failed[index]} failed"} for index in range(count)]
    return {
        "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT, "top": TOP,
        "bottom": base, "done": line(done), "failed": line(failed),
        "done_area": f"{x(0):.1f},{base} {line(done)} {x(count - 1):.1f},{base}",
        "y_ticks": [{"y": round(y(value), 1), "label": str(value)}
                    for value in (0, top // 2, top) if value or value == 0],
        "x_ticks": ticks, "hover": hover, "plot_height": plot_h,
        "total_done": sum(done), "total_failed": sum(failed),
        "peak": max([*done, *failed, 0]), "span": span,
    }
