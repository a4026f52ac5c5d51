"""``hardened-server audit query``: the records of a trail, filtered, for an auditor (issue #20).

Reads what :func:`hardened_server.trail.verify.verify_stream` reads, the same way: the local
chain file (rotated files too), or a collected stream (stdout of one or many servers with a
prefix per line, a syslog collector's file). Every line from its first ``{`` on is tried as a
record; a decision record (chained, or an unchained stdout/syslog line) is kept, anything else
is skipped. A record seen twice (the file and the stream of the same chain) is shown once:
``(chain, seq)`` for chained lines.

Querying is not verifying: run ``hardened-server audit verify-log`` first for the evidence;
this command says what the records *say*.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import html
import io
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hardened_server.trail.record import EVENT_KINDS

__all__ = ["QueryFilter", "main", "matching", "read_records", "render"]

FORMATS = ("text", "json", "csv", "html")
CSV_COLUMNS = (
    "time",
    "user",
    "event_kind",
    "rule_id",
    "decision",
    "client_ip",
    "path",
    "subject",
    "detail",
)


def _parse_time(text: str) -> str:
    """An RFC 3339 / ISO 8601 time (a date alone is its midnight, UTC), as the records' own
    format so that plain string comparison orders them."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (e.g. 2026-05-09 or 2026-05-09T07:35:25Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _kind(text: str) -> str:
    if text not in EVENT_KINDS and text not in ("decision", "denial"):
        raise argparse.ArgumentTypeError(
            f"unknown kind {text!r}; one of: denial, decision, " + ", ".join(sorted(EVENT_KINDS))
        )
    return text


def read_records(paths: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Every decision record in ``paths`` in order, once each."""
    seen: set[tuple[str, int]] = set()
    for path in paths:
        with open(path, "rb") as fh:
            for raw in fh:
                start = raw.find(b"{")
                if start < 0:
                    continue
                try:
                    obj = json.loads(raw[start:])
                except ValueError:
                    continue
                if not isinstance(obj, dict) or obj.get("kind") != "decision":
                    continue
                event = obj.get("event")
                if not isinstance(event, dict):
                    continue
                chain, seq = obj.get("chain"), obj.get("seq")
                if isinstance(seq, int):
                    key = (str(chain or path), seq)
                    if key in seen:
                        continue
                    seen.add(key)
                yield event


@dataclass(frozen=True, slots=True)
class QueryFilter:
    users: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    kinds: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    def __call__(self, event: dict[str, Any]) -> bool:
        if self.users and event.get("user") not in self.users:
            return False
        moment = str(event.get("time", ""))
        if self.since is not None and moment < self.since:
            return False
        if self.until is not None and moment > self.until:
            return False
        if self.kinds and not any(_is_kind(event, k) for k in self.kinds):
            return False
        return not self.paths or any(
            fnmatch.fnmatchcase(candidate, glob)
            for glob in self.paths
            for candidate in _paths_of(event)
        )


def _is_kind(event: dict[str, Any], kind: str) -> bool:
    if kind == "denial":
        return event.get("decision") == "deny"
    if kind == "decision":
        return event.get("event_kind") is None
    return event.get("event_kind") == kind


def _paths_of(event: dict[str, Any]) -> list[str]:
    """The request path, and the file or notebook an activity record names."""
    out = [str(event.get("path") or "")]
    detail = event.get("detail")
    if isinstance(detail, dict):
        out += [str(detail[k]) for k in ("file", "notebook") if detail.get(k)]
    return out


def matching(records: Iterable[dict[str, Any]], query: QueryFilter) -> list[dict[str, Any]]:
    return [r for r in records if query(r)]


def _detail_text(detail: Any) -> str:
    if not isinstance(detail, dict):
        return ""
    def shown(value: Any) -> str:
        if isinstance(value, str) and (" " in value or not value):
            return json.dumps(value, ensure_ascii=True)
        return str(value)

    return " ".join(f"{k}={shown(v)}" for k, v in sorted(detail.items()))


def _escape(text: str) -> str:
    """One line per record: controls escaped (a 'full' cell has newlines)."""
    return json.dumps(text, ensure_ascii=True)[1:-1]


_WHAT = {
    "code_executed": "ran code",
    "terminal_input": "typed in a terminal",
    "file_read": "read a file",
    "file_written": "wrote a file",
    "file_renamed": "renamed a file",
    "file_deleted": "deleted a file",
}


def _summary(r: dict[str, Any]) -> str:
    detail = r.get("detail") if isinstance(r.get("detail"), dict) else {}
    assert isinstance(detail, dict)
    if r.get("event_kind") == "code_executed":
        where = detail.get("notebook") or f"kernel {detail.get('kernel_id', '?')}"
        what = detail.get("code") or detail.get("code_hmac", "")[:16] + "\u2026 (hmac)"
        return f"{where}: {what} ({detail.get('size', '?')} bytes)"
    if r.get("event_kind") == "terminal_input":
        what = detail.get("line") or detail.get("line_hmac", "")[:16] + "\u2026 (hmac)"
        return f"terminal {detail.get('terminal', '?')}: {what}"
    if r.get("event_kind") == "file_read":
        return f"{detail.get('file', '')} via {detail.get('via', '')} ({detail.get('size')} bytes)"
    return str(r.get("subject") or r.get("path") or r.get("reason") or "")


def render_html(records: list[dict[str, Any]]) -> str:
    """One self-contained page (no script, no external resource): a timeline per user."""
    users: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        users.setdefault(str(r.get("user") or "(anonymous)"), []).append(r)
    e = html.escape
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">",
        "<title>hardened-server audit timeline</title><style>",
        "body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}",
        "td,th{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:left;"
        "vertical-align:top}td.t{white-space:nowrap;font-family:monospace}",
        "pre{margin:0;white-space:pre-wrap}.deny{color:#a00}</style></head><body>",
        f"<h1>Audit timeline</h1><p>{len(records)} records, {len(users)} users.</p>",
    ]
    for user, rows in users.items():
        parts.append(f"<h2>{e(user)}</h2><table><tr><th>time (UTC)</th><th>what</th>"
                     "<th>rule</th><th>detail</th><th>client</th></tr>")
        for r in rows:
            kind = r.get("event_kind")
            what = _WHAT.get(str(kind), str(kind or ("denied" if r.get("decision") == "deny"
                                                      else "decision")))
            css = ' class="deny"' if r.get("decision") == "deny" else ""
            parts.append(
                f"<tr{css}><td class=t>{e(str(r.get('time', '')))}</td><td>{e(what)}</td>"
                f"<td>{e(str(r.get('rule_id', '')))}</td><td><pre>{e(_summary(r))}</pre></td>"
                f"<td>{e(str(r.get('client_ip', '')))}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


def render(records: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "html":
        return render_html(records)
    if fmt == "json":
        return "".join(
            json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n"
            for r in records
        )
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in records:
            row = []
            for column in CSV_COLUMNS:
                value = r.get(column)
                if column == "detail":
                    value = json.dumps(value, sort_keys=True) if value is not None else ""
                row.append("" if value is None else str(value))
            writer.writerow(row)
        return buffer.getvalue()
    lines = []
    for r in records:
        kind = r.get("event_kind") or ("denial" if r.get("decision") == "deny" else "decision")
        parts = [
            str(r.get("time", "")),
            str(r.get("user") or "-"),
            kind,
            str(r.get("rule_id", "")),
            str(r.get("path") or "-"),
        ]
        if r.get("subject"):
            parts.append(str(r["subject"]))
        detail = _detail_text(r.get("detail"))
        if detail:
            parts.append(detail)
        lines.append(_escape("  ".join(parts)) + "\n")
    return "".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hardened-server audit query",
        description="Show the audit records of a trail file or a collected stream (stdout, "
        "syslog) that match every filter given.",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--user", action="append", default=[], help="this user's records (repeatable)")
    p.add_argument("--since", type=_parse_time, help="at or after this time (UTC if no zone)")
    p.add_argument("--until", type=_parse_time, help="at or before this time (UTC if no zone)")
    p.add_argument(
        "--kind",
        action="append",
        default=[],
        type=_kind,
        help="an event kind (code_executed, terminal_input, file_read, file_written, ...), "
        "'denial' or 'decision' (repeatable)",
    )
    p.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="GLOB",
        help="request path, file or notebook matching this glob (repeatable)",
    )
    p.add_argument("--format", default="text", choices=FORMATS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse's own exit: 2 on a usage error, 0 for --help
        return int(exc.code or 0)
    query = QueryFilter(
        users=tuple(args.user),
        since=args.since,
        until=args.until,
        kinds=tuple(args.kind),
        paths=tuple(args.path),
    )
    try:
        records: list[dict[str, Any]] = []
        for event in read_records(args.files):
            if query(event):
                records.append(event)
    except OSError as exc:
        sys.stderr.write(f"hardened-server audit query: {exc}\n")
        return 2
    sys.stdout.write(render(records, args.format))
    return 0
