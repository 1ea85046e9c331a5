"""``timeline.svg``: one row per job, a bar per step run coloured by how it ended.

Batch jobs first, in submission order: a dashed line while the job waits for a slot, then its
step runs side by side (successful steps alternate two greens so step boundaries show), a black
tick where a failed attempt was retried, and the job's final state as a square before its name.
Streaming jobs below: a band while the job runs (amber while starting, red while in error), a
tick per micro-batch (grey when empty) and a taller purple tick per merge. Hovering any bar
shows what it is. ``TimelineBuilder`` is an ``EventLog`` sink: the picture is made from the
same records as ``events.jsonl``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from engine.core.states import State as S
from engine.core.states import StreamingStatus as SS
from engine.core.timefmt import format_iso
from engine.simulation.events_log import Record, elapsed

WIDTH = 1400
LABEL_W = 300
PAD_R = 24
TOP = 112
COLORS: dict[str, str] = {
    S.SUCCEED: "#2e9e5b",
    "SUCCEED_ALT": "#5cbf84",
    S.ERROR: "#d64541",
    S.STOPPED: "#f0a030",
    S.DISCARDED: "#9aa0a6",
    S.RUNNING: "#3b7dd8",
    S.READY: "#c8ccd2",
}
STREAM_BANDS: dict[str, str] = {
    SS.RUNNING: "#dbe8fb",
    SS.STARTING: "#fbe9c8",
    SS.STOPPING: "#fbe9c8",
    SS.ERROR: "#f7d4d3",
    SS.LAUNCHING_ERROR: "#f7d4d3",
}
_TICKS_S = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


@dataclass
class _Bar:
    step: int
    name: str
    start: int
    end: int | None = None
    state: str = S.RUNNING


@dataclass
class _BatchRow:
    job: str
    label: str
    created: int
    first_run: int | None = None
    state: str = S.READY
    bars: list[_Bar] = field(default_factory=list)
    open: dict[int, _Bar] = field(default_factory=dict)
    retries: list[int] = field(default_factory=list)
    held: list[tuple[int, int | None, str]] = field(default_factory=list)  #: ERROR/STOPPED spans


@dataclass
class _StreamRow:
    job: str
    label: str
    status: str = SS.STOPPED
    since: int = 0
    spans: list[tuple[int, int, str]] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    empty: list[int] = field(default_factory=list)
    merges: list[int] = field(default_factory=list)


class TimelineBuilder:
    """Collects what the picture needs from the log records."""

    def __init__(self) -> None:
        self.title = "kjobs simulation"
        self.start = 0
        self.end = 0
        self.batch: dict[str, _BatchRow] = {}
        self.stream: dict[str, _StreamRow] = {}

    def __call__(self, r: Record) -> None:
        """Take one record."""
        kind, t = r["kind"], r["t"]
        if kind == "simulation":
            self.title = f"kjobs simulate: {r['scenario']} (seed {r['seed']})"
            self.start, self.end = t, t
        elif kind == "job":
            self._job(r, t)
        elif kind == "step":
            self._step(r, t)
        elif kind == "retry" and r["job"] in self.batch:
            self.batch[r["job"]].retries.append(t)
        elif kind in ("streaming", "batch", "merge"):
            self._streaming(r, kind, t)
        self.end = max(self.end, t)

    def _job(self, r: Record, t: int) -> None:
        row = self.batch.get(r["job"])
        if row is None:
            label = f"{r.get('cube', '?')} {r.get('type', '?')} {_range(r.get('segment', ''))}"
            row = self.batch[r["job"]] = _BatchRow(r["job"], label, t)
        if row.held and row.held[-1][1] is None:
            since, _, state = row.held[-1]
            row.held[-1] = (since, t, state)
        row.state = r["state"]
        if row.state in (S.ERROR, S.STOPPED):
            row.held.append((t, None, row.state))

    def _step(self, r: Record, t: int) -> None:
        row = self.batch.get(r["job"])
        if row is None:
            return
        seq, state = r["step"], r["state"]
        bar = row.open.pop(seq, None)
        if bar is not None:
            bar.end, bar.state = t, state
        if state == S.RUNNING:
            row.first_run = t if row.first_run is None else row.first_run
            row.open[seq] = _Bar(seq, r["name"], t)
            row.bars.append(row.open[seq])

    def _streaming(self, r: Record, kind: str, t: int) -> None:
        row = self.stream.get(r["job"])
        if row is None:
            model = r.get("model") or r["job"].rsplit("_", 1)[0]
            label = f"{model} · {r['job'].rsplit('_', 1)[-1]}"
            row = self.stream[r["job"]] = _StreamRow(r["job"], label, since=t)
        if kind == "streaming":
            if row.status in STREAM_BANDS:
                row.spans.append((row.since, t, row.status))
            row.status, row.since = r["state"], t
        elif kind == "batch":
            (row.batches if r["rows"] else row.empty).append(t)
        else:
            row.merges.append(t)

    def render(self, path: Path, end_ms: int | None = None) -> int:
        """Write the SVG; the number of job rows drawn."""
        end = max(self.end, end_ms or 0, self.start + 1)
        svg = _Svg(self.start, end, len(self.batch) + len(self.stream), bool(self.stream))
        svg.header(self.title, self._subtitle(end))
        svg.section("Batch jobs", len(self.batch))
        for row in self.batch.values():
            svg.batch_row(row, end)
        if self.stream:
            svg.section("Streaming jobs", len(self.stream))
            for srow in self.stream.values():
                svg.stream_row(srow, end)
        path.write_text(svg.finish(), encoding="utf-8")
        return len(self.batch) + len(self.stream)

    def _subtitle(self, end: int) -> str:
        states: dict[str, int] = {}
        for row in self.batch.values():
            states[row.state] = states.get(row.state, 0) + 1
        counts = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
        return (
            f"{format_iso(self.start)} to {format_iso(end)} ({elapsed(end - self.start)[:-4]} "
            f"simulated) · {len(self.batch)} batch jobs ({counts or 'none'}) · "
            f"{len(self.stream)} streaming jobs"
        )


class _Svg:
    """Coordinates and the element text of one picture."""

    def __init__(self, start: int, end: int, rows: int, has_stream: bool) -> None:
        self.start, self.end = start, end
        self.row_h = 18 if rows <= 60 else max(4, min(18, 1800 // rows))
        self.labels = self.row_h >= 10
        self.pad = 2 if self.row_h >= 10 else (1 if self.row_h >= 6 else 0)  #: inside a row
        self.plot_w = WIDTH - LABEL_W - PAD_R
        sections = 2 if has_stream else 1
        self.height = TOP + rows * self.row_h + sections * 24 + 48
        self.y = TOP
        self.parts: list[str] = []

    def x(self, t: int) -> float:
        return LABEL_W + (t - self.start) * self.plot_w / (self.end - self.start)

    def header(self, title: str, subtitle: str) -> None:
        add = self.parts.append
        add(
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{self.height}" '
            f'viewBox="0 0 {WIDTH} {self.height}" font-family="Helvetica, Arial, sans-serif">'
        )
        add(f'<rect width="{WIDTH}" height="{self.height}" fill="#ffffff"/>')
        add(f'<text x="16" y="30" font-size="19" font-weight="bold">{escape(title)}</text>')
        add(f'<text x="16" y="52" font-size="12" fill="#555">{escape(subtitle)}</text>')
        self._legend(76)
        self._axis()

    def _legend(self, y: int) -> None:
        items = [
            ("rect", COLORS[S.SUCCEED], "step succeeded"),
            ("rect", COLORS[S.ERROR], "failed (ERROR)"),
            ("rect", COLORS[S.STOPPED], "paused (STOPPED)"),
            ("rect", COLORS[S.DISCARDED], "discarded"),
            ("rect", COLORS[S.RUNNING], "running at the end"),
            ("dash", "#8a8f96", "waiting for a slot"),
            ("dots", COLORS[S.ERROR], "ERROR / STOPPED until resumed"),
            ("tick", "#111111", "retry"),
            ("rect", STREAM_BANDS[SS.RUNNING], "streaming job running"),
            ("tick", COLORS[S.RUNNING], "micro-batch"),
            ("tick", "#8e44ad", "merge"),
        ]
        x = 16.0
        for shape, color, text in items:
            if shape == "rect":
                self.parts.append(
                    f'<rect x="{x}" y="{y - 9}" width="14" height="10" fill="{color}"/>'
                )
            elif shape in ("dash", "dots"):
                style = (
                    'stroke-dasharray="3,2"'
                    if shape == "dash"
                    else ('stroke-width="2" stroke-dasharray="1,2"')
                )
                self.parts.append(
                    f'<line x1="{x}" y1="{y - 4}" x2="{x + 14}" y2="{y - 4}" stroke="{color}" '
                    f"{style}/>"
                )
            else:
                self.parts.append(
                    f'<line x1="{x + 7}" y1="{y - 10}" x2="{x + 7}" y2="{y + 1}" '
                    f'stroke="{color}" stroke-width="2"/>'
                )
            self.parts.append(f'<text x="{x + 19}" y="{y}" font-size="11">{escape(text)}</text>')
            x += 27 + 6.2 * len(text)

    def _axis(self) -> None:
        span_s = (self.end - self.start) / 1000
        step = next((s for s in _TICKS_S if span_s / s <= 12), _TICKS_S[-1])
        bottom = self.height - 36
        t = self.start - self.start % (step * 1000) + step * 1000
        if self.start % (step * 1000) == 0:
            t = self.start
        while t <= self.end:
            x = self.x(t)
            label = format_iso(t)[11:16] if step < 86_400 else format_iso(t)[:10]
            self.parts.append(
                f'<line x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{bottom}" stroke="#e3e5e8"/>'
            )
            self.parts.append(
                f'<text x="{x:.1f}" y="{TOP - 10}" font-size="10" fill="#666" '
                f'text-anchor="middle">{label}</text>'
            )
            self.parts.append(
                f'<text x="{x:.1f}" y="{bottom + 14}" font-size="10" fill="#666" '
                f'text-anchor="middle">{label}</text>'
            )
            t += step * 1000

    def section(self, title: str, count: int) -> None:
        self.parts.append(
            f'<text x="16" y="{self.y + 16}" font-size="12" font-weight="bold" fill="#333">'
            f"{escape(title)} ({count})</text>"
        )
        self.y += 24

    def _row_open(self, job: str, label: str, state_color: str | None) -> tuple[int, int]:
        y, h = self.y, self.row_h
        self.parts.append(f'<g class="row" data-job={quoteattr(job)}>')
        if self.labels:
            if state_color is not None:
                self.parts.append(
                    f'<rect x="16" y="{y + h / 2 - 4:.1f}" width="8" height="8" '
                    f'fill="{state_color}"/>'
                )
            size = min(11, h - 5)
            self.parts.append(
                f'<text x="30" y="{y + h / 2 + size / 3:.1f}" font-size="{size}">'
                f"<title>{escape(job)}</title>{escape(_short(label, 44))}</text>"
            )
        return y, h

    def batch_row(self, row: _BatchRow, end: int) -> None:
        y, h = self._row_open(row.job, row.label, COLORS.get(row.state, "#999"))
        mid = y + h / 2
        waited = row.first_run if row.first_run is not None else end
        if waited > row.created:
            self.parts.append(
                f'<line x1="{self.x(row.created):.1f}" y1="{mid:.1f}" x2="{self.x(waited):.1f}" '
                f'y2="{mid:.1f}" stroke="#8a8f96" stroke-dasharray="3,2"/>'
            )
        for since, until, state in row.held:
            x0, x1 = self.x(since), self.x(until if until is not None else end)
            self.parts.append(
                f'<line x1="{x0:.1f}" y1="{mid:.1f}" x2="{x1:.1f}" y2="{mid:.1f}" '
                f'stroke="{COLORS[state]}" stroke-width="2" stroke-dasharray="1,2">'
                f"<title>{state} {elapsed((until or end) - since)}</title></line>"
            )
        for bar in row.bars:
            self._bar(bar, y, h, end)
        for t in row.retries:
            x = self.x(t)
            self.parts.append(
                f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + h}" '
                'stroke="#111" stroke-width="1.5"/>'
            )
        self.parts.append("</g>")
        self.y += h

    def _bar(self, bar: _Bar, y: float, h: float, end: int) -> None:
        stop = bar.end if bar.end is not None else end
        key = "SUCCEED_ALT" if bar.state == S.SUCCEED and bar.step % 2 else bar.state
        x0, x1 = self.x(bar.start), self.x(stop)
        tip = f"{bar.step:02d} {bar.name}: {bar.state}, {elapsed(stop - bar.start)}"
        self.parts.append(
            f'<rect x="{x0:.1f}" y="{y + self.pad}" width="{max(0.6, x1 - x0):.1f}" '
            f'height="{h - 2 * self.pad}" '
            f'fill="{COLORS.get(key, "#999")}"><title>{escape(tip)}</title></rect>'
        )

    def stream_row(self, row: _StreamRow, end: int) -> None:
        y, h = self._row_open(row.job, row.label, None)
        spans = [*row.spans]
        if row.status in STREAM_BANDS:
            spans.append((row.since, end, row.status))
        for t0, t1, status in spans:
            x0, x1 = self.x(t0), self.x(t1)
            self.parts.append(
                f'<rect x="{x0:.1f}" y="{y}" width="{max(0.6, x1 - x0):.1f}" '
                f'height="{h}" fill="{STREAM_BANDS[status]}"><title>{status}</title></rect>'
            )
        self._ticks(row.empty, y + h * 0.35, h * 0.3, "#b7bcc3")
        self._ticks(row.batches, y + h * 0.25, h * 0.5, COLORS[S.RUNNING])
        self._ticks(row.merges, y + self.pad / 2, h - self.pad, "#8e44ad")
        self.parts.append("</g>")
        self.y += h

    def _ticks(self, times: list[int], top: float, height: float, color: str) -> None:
        """Ticks as one path; neighbouring pixel columns merge into one run."""
        if not times:
            return
        columns = sorted({int(self.x(t)) for t in times})
        runs: list[list[int]] = []
        for c in columns:
            if runs and c - runs[-1][1] <= 1:
                runs[-1][1] = c
            else:
                runs.append([c, c])
        d = "".join(f"M{a},{top:.1f}h{b - a + 1}v{height:.1f}h{a - b - 1}z" for a, b in runs)
        self.parts.append(f'<path d="{d}" fill="{color}"/>')

    def finish(self) -> str:
        self.parts.append("</svg>")
        return "\n".join(self.parts) + "\n"


def _range(segment: str) -> str:
    """``20240101000000_20240101010000`` -> ``01-01 00:00→01:00`` (a full build: ``full``)."""
    start, _, end = segment.partition("_")
    if len(start) != 14 or len(end) != 14 or not (start + end).isdigit():
        return segment
    if start.startswith("1970") and end.startswith("9999"):
        return "full"
    day = f"{start[4:6]}-{start[6:8]}"
    end_text = f"{end[8:10]}:{end[10:12]}"
    if end[:8] != start[:8]:
        end_text = f"{end[4:6]}-{end[6:8]} {end_text}"
    return f"{day} {start[8:10]}:{start[10:12]}→{end_text}"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
