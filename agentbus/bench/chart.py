"""The chart: latency against concurrency, parallel and chained, per workflow (an HTML page, or a PNG)."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from agentbus.bench.harness import MODES


def chart_series(results: dict[str, Any]) -> tuple[list[int], dict[str, list[float | None]]]:
    """The levels and, per workflow, its parallel and chained p50 and p95 at each."""
    levels: list[int] = []
    series: dict[str, list[float | None]] = {}
    for name, figures in results["workflows"].items():
        rows = [r for r in figures["levels"] if "p50_ms" in r]
        levels = levels or [r["concurrency"] for r in rows]
        by_level = {r["concurrency"]: r for r in rows}
        for mode in MODES:
            for p in ("p50", "p95"):
                series[f"{name} {mode} {p}"] = [
                    (by_level[lv] if mode == "parallel" else by_level[lv].get("chained", {})).get(f"{p}_ms")
                    if lv in by_level else None for lv in levels]
    return levels, series


def write_chart(path: Path, results: dict[str, Any]) -> Path:
    """Latency against concurrency, parallel and chained, per workflow: a PNG (matplotlib) or an HTML page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    levels, series = chart_series(results)
    if path.suffix.lower() == ".png":
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(8, 5))
        for index, (name, values) in enumerate(series.items()):
            # matplotlib draws a None (a level not run) as a gap; its stubs want floats only.
            axes.plot(levels, values, marker="o",  # type: ignore[arg-type]
                      linestyle="-" if name.endswith("p50") else "--", label=name,
                      color=PALETTE[(index // 2) % len(PALETTE)])
        axes.axhline(results["slowest_agent_ms"], color="grey", linewidth=0.8,
                     label=f"slowest agent ({results['workflow']})")
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("requests put at once")
        axes.set_ylabel("end to end (ms)")
        axes.set_title("agentbus: parallel vs chained, end to end per request")
        axes.legend(fontsize="small")
        figure.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(figure)
        return path.resolve()
    path.write_text(_chart_html(levels, series, results))
    return path.resolve()


PALETTE = ("#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7")


def _chart_html(levels: list[int], series: dict[str, list[float | None]], results: dict[str, Any]) -> str:
    width, height, left, bottom, top, right = 860, 460, 70, 50, 30, 270
    values = [v for vs in series.values() for v in vs if v] + [results["slowest_agent_ms"] or 1]
    low, high = math.log10(max(1.0, min(values) / 1.5)), math.log10(max(values) * 1.5)

    def x(index: int) -> float:
        return left + (index + 0.5) * (width - left - right) / max(1, len(levels))

    def y(value: float) -> float:
        return height - bottom - (math.log10(value) - low) / ((high - low) or 1) * (height - bottom - top)

    parts = []
    for exponent in range(math.floor(low), math.ceil(high) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10 ** exponent
            if 10 ** low <= value <= 10 ** high:
                parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                             f'stroke="#eee"/><text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end">'
                             f'{value:,.0f}</text>')
    for index, level in enumerate(levels):
        parts.append(f'<text x="{x(index):.1f}" y="{height - bottom + 18}" text-anchor="middle">{level}</text>')
    slowest = results["slowest_agent_ms"]
    if slowest:
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(slowest):.1f}" y2="{y(slowest):.1f}" '
                     f'stroke="#999" stroke-dasharray="4 3"/><text x="{width - right + 6}" y="{y(slowest) + 4:.1f}">'
                     f'slowest agent ({html.escape(str(results["workflow"]))})</text>')
    for row, (name, vs) in enumerate(series.items()):
        colour = PALETTE[(row // 2) % len(PALETTE)]
        points = [(x(i), y(v)) for i, v in enumerate(vs) if v]
        dash = "" if name.endswith("p50") else ' stroke-dasharray="6 4"'
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="'
                     + " ".join(f"{px:.1f},{py:.1f}" for px, py in points) + '"/>')
        parts += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"><title>{html.escape(name)}: '
                  f'{v:,.0f} ms</title></circle>' for (px, py), v in zip(points, [v for v in vs if v], strict=True)]
        parts.append(f'<rect x="{width - right + 6}" y="{top + 20 + row * 18}" width="14" height="4" '
                     f'fill="{colour}"/><text x="{width - right + 26}" y="{top + 26 + row * 18}">'
                     f'{html.escape(name)}</text>')
    parts.append(f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">requests put at '
                 f'once</text><text transform="translate(16,{(height - bottom + top) / 2}) rotate(-90)" '
                 f'text-anchor="middle">end to end, ms (log)</text>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="12">{"".join(parts)}</svg>')
    m = results["machine"]
    work = "; ".join(f"{name}: " + ", ".join(f"{k} {v} ms" for k, v in r["work_profile_ms"].items())
                     for name, r in results["workflows"].items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>agentbus benchmark</title>
<style>body{{font-family:sans-serif;margin:24px;max-width:1060px}}</style></head><body>
<h1>agentbus benchmark — parallel vs chained</h1>
<p>End to end per request (harness PutEvents → outcome event observed), on the local runtime with simulated agent
work ({html.escape(work)}).
Measured {html.escape(results["generated_at"])} on {html.escape(str(m["cpu"]))}, {m["cores"]} cores.</p>
{svg}</body></html>
"""

