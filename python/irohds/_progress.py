"""The one-line progress bar shown on stderr while the daemon downloads a
result from a peer (WAIT with FETCH, then PROGRESS frames; docs/ipc.md).

    irohds: fetching mod.train  [#########-----------]  45.2/100.0 MB  12.3 MB/s  ETA 4s

Shown only when stderr is a terminal; elsewhere (a log file, a pipe, CI)
nothing is written.  It is redrawn at most ten times a second, whatever the
rate of PROGRESS frames, and erased when the wait ends, so the terminal is
left as it was.  This module is imported on a daemon GET, never on a hit.

The bar is the ``progress`` callback of Client.get, called with the GIL held
in the thread that waits.  It never raises: an error while drawing (a closed
stderr, say) is logged once and the bar goes quiet, because an exception
from the callback would abandon the wait (Client.get closes the connection).
"""
from __future__ import annotations

import sys
import time
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms)
if TYPE_CHECKING:
    from typing import Any, Optional, TextIO

REDRAW_EVERY = 0.1  # seconds: at most ~10 redraws a second
BAR_CELLS = 20
CLEAR_LINE = "\r\x1b[2K"  # back to column 0, erase the line


def for_stderr(label: str) -> Optional["Bar"]:
    """A Bar writing to sys.stderr if it is a terminal, else None."""
    stream = sys.stderr
    try:
        if stream is None or not stream.isatty():
            return None
    except (AttributeError, ValueError, OSError):  # closed or not a real file
        return None
    return Bar(label, stream)


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f}"


def _eta(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def render(label: str, done: int, total: int, rate: Optional[float], width: int) -> str:
    """The bar's text for done of total bytes at rate bytes/s (None: not
    known yet), within width - 1 columns: on a narrow terminal the bar
    graphic goes first, then the label is shortened; the figures stay."""
    frac = min(done / total, 1.0) if total > 0 else 1.0
    cells = int(frac * BAR_CELLS)
    graphic = "[" + "#" * cells + "-" * (BAR_CELLS - cells) + "]"
    stats = [f"{_mb(done)}/{_mb(total)} MB"]
    if rate:
        stats += [f"{_mb(rate)} MB/s", "ETA " + _eta(max(total - done, 0) / rate)]
    head = "irohds: fetching "
    room = max(width - 1, 20)
    for parts in ([head + label, graphic] + stats, [head + label] + stats):
        text = "  ".join(parts)
        if len(text) <= room:
            return text
    tail = "  " + "  ".join(stats)
    keep = room - len(head) - len(tail)
    if keep >= 4:
        return head + label[:keep - 1] + "…" + tail
    return tail.strip()[:room]


def _columns(stream: Any) -> int:
    """The width of the terminal behind stream (80 when it does not say)."""
    import os

    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


class Bar:
    """progress(done, total) for Client.get; close() erases the line."""

    def __init__(self, label: str, stream: TextIO) -> None:
        self.label = label
        self.stream = stream
        self.drawn = False
        self.broken = False
        self.last_draw = 0.0
        self.first: Optional[tuple] = None  # (time, bytes done) of the first report
        self.width = 0

    def __call__(self, done: int, total: int) -> None:
        if self.broken:
            return
        try:
            self.update(done, total)
        except Exception as exc:  # noqa: BLE001 - a bar must never end the wait
            self.broken = True
            from irohds._daemon import log_once

            log_once("progress-bar", "irohds: the download progress bar failed (%s: %s); "
                     "waiting without it", type(exc).__name__, exc)

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = (now, done)
        if now - self.last_draw < REDRAW_EVERY and done < total:
            return
        self.last_draw = now
        rate = None
        elapsed = now - self.first[0]
        if elapsed > 0 and done > self.first[1]:
            rate = (done - self.first[1]) / elapsed
        if not self.width:
            self.width = _columns(self.stream)
        self.stream.write(CLEAR_LINE + render(self.label, done, total, rate, self.width))
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        """Erase the bar (if it was drawn); the cursor is left at column 0."""
        if not self.drawn or self.broken:
            return
        self.drawn = False
        try:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()
        except Exception:  # noqa: BLE001 - nothing to erase on a dead stream
            pass
