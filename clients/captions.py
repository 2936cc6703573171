"""Terminal captions: the partial line rewritten in place, finals committed line by line.

Pure presentation: `CaptionPrinter.show(event)` writes to a text stream. On a terminal the
partial is redrawn with `\\r` + clear-line; elsewhere (a pipe, a file, a test) only finals and
notices are written, one line each, so the output stays readable.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict, is_dataclass
from typing import TextIO

from .events import (
    AudioLost,
    Event,
    Metadata,
    Reconnected,
    Reconnecting,
    ServerError,
    Transcript,
)

__all__ = ["CaptionPrinter", "event_json", "timestamp"]

_CLEAR_LINE = "\r\x1b[2K"


def timestamp(seconds: float) -> str:
    """`mm:ss.s` (or `h:mm:ss.s` past an hour)."""
    minutes, secs = divmod(max(seconds, 0.0), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes:02d}:{secs:04.1f}"


def event_json(event: Event) -> str:
    """One JSON line: what the server sent, or the client-side event's fields."""
    raw = getattr(event, "raw", None)
    if raw:
        return json.dumps(raw, ensure_ascii=False)
    data = asdict(event) if is_dataclass(event) else {"event": repr(event)}
    return json.dumps({"type": type(event).__name__, **data}, ensure_ascii=False)


class CaptionPrinter:
    """Shows events as captions on `out` (default stdout); notices go to `err` (stderr).

    `live` (default: `out.isatty()`) draws partials in place. `show_hallucinations` keeps
    finals that the server flagged as likely invented (shown with a "?" mark); by default
    they are left out. `finals` keeps every committed (timestamp, text) line.
    """

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, *,
                 live: bool | None = None, show_hallucinations: bool = False,
                 show_language: bool = False) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.live = self.out.isatty() if live is None else live
        self.show_hallucinations = show_hallucinations
        self.show_language = show_language
        self.finals: list[tuple[float, str]] = []
        self._partial_shown = False

    def _prefix(self, event: Transcript) -> str:
        channel = f"[ch{event.channel}] " if event.channels > 1 else ""
        language = f"({event.language}) " if self.show_language and event.language else ""
        return f"[{timestamp(event.start)}] {channel}{language}"

    def _clear_partial(self) -> None:
        if self._partial_shown:
            self.out.write(_CLEAR_LINE)
            self._partial_shown = False

    def show(self, event: Event) -> None:
        if isinstance(event, Transcript):
            self._transcript(event)
        elif isinstance(event, (ServerError, Reconnecting, Reconnected, AudioLost)):
            self._notice(event)
        elif isinstance(event, Metadata):
            self._clear_partial()
        self.out.flush()

    def _transcript(self, event: Transcript) -> None:
        text = event.text.strip()
        if not event.is_final:
            if not self.live or not text:
                return
            width = shutil.get_terminal_size((100, 20)).columns
            line = f"{self._prefix(event)}{text}"
            if len(line) > width - 1:      # keep the newest words visible on one line
                line = "…" + line[-(width - 2):]
            self.out.write(f"{_CLEAR_LINE}\x1b[2m{line}\x1b[0m" if self.live else line)
            self._partial_shown = True
            return
        self._clear_partial()
        if not text:
            return
        mark = ""
        if event.likely_hallucination:
            if not self.show_hallucinations:
                return
            mark = "? "
        self.finals.append((event.start, text))
        self.out.write(f"{self._prefix(event)}{mark}{text}\n")

    def _notice(self, event: Event) -> None:
        if isinstance(event, ServerError):
            message = f"server warning [{event.code}]: {event.message}"
        elif isinstance(event, Reconnecting):
            message = (f"connection lost ({event.reason}); reconnecting in {event.delay:.1f} s"
                       f" (attempt {event.attempt})")
            if event.unconfirmed > 0.05:
                message += f"; {event.unconfirmed:.1f} s sent may have no transcript"
        elif isinstance(event, Reconnected):
            message = f"reconnected (attempt {event.attempt})"
        elif isinstance(event, AudioLost):
            message = (f"audio lost: {event.duration:.1f} s at {timestamp(event.start)}"
                       f" ({event.reason})")
        else:
            return
        self._clear_partial()
        self.out.flush()
        print(f"streamscribe: {message}", file=self.err, flush=True)
