"""HTML for Jupyter: models as cards, lists as tables, operations as progress cards.

Two rules hold for everything rendered here:

- every piece of text goes through :func:`esc` (``html.escape`` with quotes), attribute values
  included; links are only made for ``http``/``https`` URLs;
- secrets are never rendered: ``SecretStr``/``SecretBytes`` values (also inside dicts and lists)
  and fields declared with ``repr=False`` show as a mask, whatever their content.

Only the standard library and pydantic are imported; IPython is never needed to build the HTML.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretBytes, SecretStr

__all__ = ["MASK", "HtmlRepr", "esc", "listing_html", "model_html", "operation_card"]

MASK = "••••••••"
MAX_ROWS = 100  # a notebook table longer than this is unreadable; the rest is counted, not shown
_CELL_CHARS = 80  # table cells: longer text is cut (the full text stays in the title tooltip)
_INLINE_CHARS = 200  # cards: longer or multi-line text folds into <details>
_LIST_ITEMS = 20

# status words -> colour of their badge
_GOOD = {"running", "succeeded", "completed", "online", "ok", "enabled"}
_BAD = {"error", "failed", "vanished", "offline"}
_IDLE = {"stopped", "cancelled", "unknown", "disabled"}
_COLOURS = {"good": "#1a7f37", "bad": "#cf222e", "idle": "#6e7781", "busy": "#0969da"}

# table columns per model (by class name); others get their first scalar fields
_COLUMNS: dict[str, tuple[str, ...]] = {
    "App": ("hostname", "status", "catalog_id", "node", "vmid", "address", "url"),
    "Backup": ("hostname", "status", "created_at", "size_bytes", "mode", "target", "node", "note"),
    "BackupSchedule": ("app_id", "cron", "keep_last", "keep_daily", "keep_weekly", "target", "enabled", "next_run_at"),
    "BackupTarget": ("name", "kind", "created_at"),
    "Host": ("name", "url", "auth", "is_default", "verify_tls", "created_at"),
    "Node": ("name", "status", "cpus", "maxmem", "mem", "maxdisk", "pve_version", "last_seen_at"),
    "CatalogApp": ("id", "name", "version", "category", "description", "min_memory", "min_cpu"),
    "Operation": ("kind", "status", "current_step", "app_id", "error", "created_at", "finished_at"),
    "OperationEvent": ("seq", "time", "step", "level", "message", "progress"),
    "DiscoveredContainer": ("host", "node", "vmid", "name", "status", "tags", "resources"),
    "StorageStatus": ("storage", "type", "content", "active", "shared", "total", "used", "avail"),
    "User": ("name", "role", "disabled", "created_at"),
    "ApiToken": ("name", "user_id", "created_at", "expires_at", "last_used_at", "revoked_at"),
}
# field names holding byte counts, shown as KiB/MiB/GiB
_BYTE_FIELDS = {"mem", "maxmem", "disk", "maxdisk", "size", "total", "used", "avail", "free"}
_LABEL_FIELDS = ("hostname", "name", "id")

_MUTED = "opacity:.6"
_CARD = (
    "font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:13px;line-height:1.45;"
    "border:1px solid rgba(128,128,128,.35);border-radius:6px;padding:8px 12px;margin:2px 0;"
    "display:inline-block;min-width:320px;max-width:100%"
)
_TABLE = "border-collapse:collapse;font-size:13px"
_TH = "text-align:left;padding:2px 10px 2px 0;font-weight:600;vertical-align:top;white-space:nowrap"
_TD = "text-align:left;padding:2px 10px 2px 0;vertical-align:top"


def esc(value: object) -> str:
    """Text made safe for HTML content and attribute values."""
    return html.escape(str(value), quote=True)


class HtmlRepr:
    """Mixin for the public models: ``_repr_html_`` renders the model as a card (Jupyter calls it)."""

    __slots__ = ()

    def _repr_html_(self) -> str:
        return model_html(cast(BaseModel, self))


# values -----------------------------------------------------------------------------------------


def _muted(text: str) -> str:
    return f'<span style="{_MUTED}">{esc(text)}</span>'


def _masked() -> str:
    return f'<span class="proximity-secret" style="{_MUTED}" title="secret: not shown">{MASK}</span>'


def badge(word: str) -> str:
    lowered = word.lower()
    tone = "good" if lowered in _GOOD else "bad" if lowered in _BAD else "idle" if lowered in _IDLE else "busy"
    colour = _COLOURS[tone]
    return (
        f'<span class="proximity-status" style="color:{colour};border:1px solid {colour};'
        f'border-radius:9px;padding:0 7px;font-size:12px;white-space:nowrap">{esc(word)}</span>'
    )


def _human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"  # pragma: no cover - the loop always returns


def _when(value: datetime | date) -> str:
    if isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        offset = value.utcoffset()
        if offset is not None:
            text += " UTC" if not offset else value.strftime(" %z")
        return text
    return value.isoformat()


def _is_secret(value: object) -> bool:
    return isinstance(value, SecretStr | SecretBytes)


def _plain(value: Any) -> Any:
    """A JSON-able copy with every secret replaced by the mask (for the folded JSON views)."""
    if _is_secret(value):
        return MASK
    if isinstance(value, BaseModel):
        return {
            name: MASK if _hidden(type(value), name) else _plain(getattr(value, name, None))
            for name in type(value).model_fields
        }
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return _when(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _hidden(model: type[BaseModel], name: str) -> bool:
    """A field declared ``repr=False`` (e.g. an SSH key given as contents) is never shown."""
    info = model.model_fields.get(name)
    return info is not None and info.repr is False


def _text(text: str, *, compact: bool) -> str:
    if compact:
        one_line = " ".join(text.split())
        if len(one_line) > _CELL_CHARS:
            return f'<span title="{esc(text)}">{esc(one_line[: _CELL_CHARS - 1])}…</span>'
        return esc(one_line)
    if len(text) > _INLINE_CHARS or "\n" in text:
        first = text.strip().splitlines()[0] if text.strip() else ""
        summary = first[:60] + ("…" if len(first) > 60 or len(text) > len(first) else "")
        return (
            f"<details><summary>{esc(summary)}</summary>"
            f'<pre style="white-space:pre-wrap;margin:2px 0">{esc(text)}</pre></details>'
        )
    return esc(text)


def _url(text: str, *, compact: bool) -> str:
    parts = urlsplit(text)
    if parts.scheme in {"http", "https"} and parts.netloc:
        return f'<a href="{esc(text)}" target="_blank" rel="noopener noreferrer">{_text(text, compact=True)}</a>'
    return _text(text, compact=compact)  # never a link to javascript:, data:, ...


def value_html(value: Any, *, field: str = "", compact: bool = False) -> str:
    """One value as HTML: secrets masked, text escaped, statuses as badges, bytes humanised."""
    if _is_secret(value):
        return _masked()
    if value is None:
        return _muted("—")
    if isinstance(value, bool):
        return "yes" if value else _muted("no")
    if isinstance(value, Enum):
        word = str(value.value)
        return badge(word) if field in {"status", "level"} else esc(word)
    if isinstance(value, datetime | date):
        return esc(_when(value))
    if isinstance(value, int):
        if field in _BYTE_FIELDS or field.endswith("_bytes"):
            return f'<span title="{value} bytes">{esc(_human_bytes(value))}</span>'
        return esc(value)
    if isinstance(value, float):
        return esc(f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}")
    if isinstance(value, str):
        if field == "status":
            return badge(value)
        if field.endswith("url") or field == "website":
            return _url(value, compact=compact)
        return _text(value, compact=compact)
    if isinstance(value, BaseModel):
        return _inline_model(value, compact=compact)
    if isinstance(value, Mapping):
        return _mapping(value, compact=compact)
    if isinstance(value, list | tuple | set | frozenset):
        return _sequence(list(value), compact=compact)
    return _text(str(value), compact=compact)


def _inline_model(model: BaseModel, *, compact: bool) -> str:
    parts = []
    for name in type(model).model_fields:
        value = getattr(model, name, None)
        if value is None or value == () or value == [] or value == {}:
            continue
        shown = _masked() if _hidden(type(model), name) else value_html(value, field=name, compact=True)
        parts.append(f"{esc(name)}={shown}")
    return " ".join(parts) if parts else _muted("—")


def _scalar(value: object) -> bool:
    return _is_secret(value) or value is None or isinstance(value, bool | int | float | str | Enum | datetime | date)


def _mapping(value: Mapping[Any, Any], *, compact: bool) -> str:
    if not value:
        return _muted("—")
    if all(_scalar(v) for v in value.values()) and (compact or len(value) <= 8):
        items = list(value.items())
        shown = [f"{esc(k)}: {value_html(v, field=str(k), compact=True)}" for k, v in items[:_LIST_ITEMS]]
        if len(items) > _LIST_ITEMS:
            shown.append(_muted(f"… {len(items) - _LIST_ITEMS} more"))
        return ", ".join(shown)
    if compact:
        return _muted(f"{len(value)} entries")
    text = json.dumps(_plain(value), indent=2, sort_keys=False, default=str)
    return (
        f"<details><summary>{len(value)} entries</summary>"
        f'<pre style="white-space:pre-wrap;margin:2px 0">{esc(text)}</pre></details>'
    )


def _sequence(items: list[Any], *, compact: bool) -> str:
    if not items:
        return _muted("—")
    if all(_scalar(v) for v in items):
        shown = [value_html(v, compact=True) for v in items[:_LIST_ITEMS]]
        if len(items) > _LIST_ITEMS:
            shown.append(_muted(f"… {len(items) - _LIST_ITEMS} more"))
        return ", ".join(shown)
    if compact:
        return _muted(f"{len(items)} items")
    rows = [value_html(v) for v in items[:_LIST_ITEMS]]
    if len(items) > _LIST_ITEMS:
        rows.append(_muted(f"… {len(items) - _LIST_ITEMS} more"))
    return "<br>".join(rows)


# models and listings ----------------------------------------------------------------------------


def _label(model: BaseModel) -> str | None:
    for name in _LABEL_FIELDS:
        value = getattr(model, name, None)
        if isinstance(value, str) and value and name in type(model).model_fields and not _hidden(type(model), name):
            return value
    return None


def model_html(model: BaseModel) -> str:
    """A model as a card: its class name, its name or id, and one row per field."""
    cls = type(model)
    label = _label(model)
    title = f"<b>{esc(cls.__name__)}</b>" + (f" {_muted(label)}" if label else "")
    rows = []
    for name in cls.model_fields:
        value = getattr(model, name, None)  # a model_construct()ed partial record lacks some
        shown = _masked() if _hidden(cls, name) else value_html(value, field=name)
        rows.append(f'<tr><th style="{_TH}">{esc(name)}</th><td style="{_TD}">{shown}</td></tr>')
    return (
        f'<div class="proximity-model" data-model="{esc(cls.__name__)}" style="{_CARD}">'
        f'<div style="margin-bottom:4px">{title}</div>'
        f'<table style="{_TABLE}">{"".join(rows)}</table></div>'
    )


def _columns(cls: type[BaseModel], sample: BaseModel) -> tuple[str, ...]:
    chosen = _COLUMNS.get(cls.__name__)
    if chosen is not None and all(name in cls.model_fields for name in chosen):
        return chosen
    names = [n for n in cls.model_fields if not _hidden(cls, n) and _scalar(getattr(sample, n, None))]
    return tuple(names[:8])


def listing_html(items: Sequence[Any]) -> str:
    """A list as a table: one row per model (operation handles show their record), at most
    ``MAX_ROWS`` rows; an empty list says "no items"."""
    if not items:
        return f'<div class="proximity-listing" data-count="0" style="{_CARD}">{_muted("no items")}</div>'
    records = [_record(item) for item in items[:MAX_ROWS]]
    models = [r for r in records if isinstance(r, BaseModel)]
    kinds = {type(r) for r in records}
    if len(models) == len(records) and len(kinds) == 1:
        cls = type(models[0])
        columns = _columns(cls, models[0])
        head = "".join(f'<th style="{_TH}">{esc(c)}</th>' for c in columns)
        body = "".join(
            "<tr>"
            + "".join(
                f'<td style="{_TD}">'
                f"{_masked() if _hidden(cls, c) else value_html(getattr(m, c, None), field=c, compact=True)}</td>"
                for c in columns
            )
            + "</tr>"
            for m in models
        )
        what = cls.__name__
    else:
        head = f'<th style="{_TH}">type</th><th style="{_TH}">value</th>'
        body = "".join(
            f'<tr><td style="{_TD}">{esc(type(r).__name__)}</td><td style="{_TD}">'
            f"{_inline_model(r, compact=True) if isinstance(r, BaseModel) else value_html(r, compact=True)}</td></tr>"
            for r in records
        )
        what = "items" if len(kinds) > 1 else type(records[0]).__name__
    more = len(items) - len(records)
    foot = f'<div style="{_MUTED}">… and {more} more</div>' if more > 0 else ""
    caption = f'<div style="margin-bottom:4px">{_muted(f"{what}: {len(items)}")}</div>'
    return (
        f'<div class="proximity-listing" data-count="{len(items)}" style="{_CARD}">{caption}'
        f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{foot}</div>'
    )


def _record(item: Any) -> Any:
    """What a row shows: a model as is; an operation handle (anything with ``get()`` and
    ``events()``) as its current record."""
    if isinstance(item, BaseModel):
        return item
    if callable(getattr(item, "get", None)) and callable(getattr(item, "events", None)):
        return item.get()
    return item


# operations -------------------------------------------------------------------------------------
# What a card reads of an operation and its events, as protocols: this module renders every model,
# so it names none of them (models.operation imports it; naming Operation here would be a cycle).


class _Status(Protocol):
    @property
    def value(self) -> str: ...


class CardOperation(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> _Status: ...
    @property
    def steps(self) -> Sequence[str]: ...
    @property
    def current_step(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def result(self) -> Mapping[str, Any]: ...
    @property
    def finished(self) -> bool: ...


class CardEvent(Protocol):
    @property
    def time(self) -> datetime: ...
    @property
    def step(self) -> str | None: ...
    @property
    def level(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def progress(self) -> float | None: ...


def _fraction(op: CardOperation, events: Sequence[CardEvent]) -> float:
    if op.status.value == "succeeded":
        return 1.0
    for event in reversed(events):
        if event.progress is not None:
            return event.progress
    if op.steps and op.current_step in op.steps:
        return op.steps.index(op.current_step) / len(op.steps)
    return 0.0


def _step_marks(op: CardOperation) -> Iterable[str]:
    status = op.status.value
    failed = op.result.get("failed_step") if status in {"failed", "cancelled"} else None
    stop = failed if isinstance(failed, str) and failed in op.steps else op.current_step
    index = op.steps.index(stop) if stop in op.steps else (len(op.steps) if status == "succeeded" else -1)
    for i, step in enumerate(op.steps):
        if status == "succeeded" or i < index:
            mark, colour = "✓", _COLOURS["good"]
        elif i == index and status in {"failed", "cancelled"}:
            mark, colour = "✗", _COLOURS["bad"]
        elif i == index:
            mark, colour = "▶", _COLOURS["busy"]
        else:
            mark, colour = "·", _COLOURS["idle"]
        yield (
            f'<span class="proximity-step" data-step="{esc(step)}" style="white-space:nowrap;margin-right:8px">'
            f'<span style="color:{colour}">{mark}</span> {esc(step)}</span>'
        )


def operation_card(op: CardOperation, events: Sequence[CardEvent] = (), *, note: str | None = None) -> str:
    """An operation as a progress card: kind, status, progress bar, steps, its last events and,
    when it failed, the error. ``events``: the log lines to show (the caller picks the tail)."""
    status = op.status.value
    fraction = max(0.0, min(1.0, _fraction(op, events)))
    tone = (
        "bad"
        if status == "failed"
        else "idle"
        if status == "cancelled"
        else ("good" if status == "succeeded" else "busy")
    )
    colour = _COLOURS[tone]
    percent = round(fraction * 100)
    parts = [
        f'<div style="margin-bottom:4px"><b>{esc(op.kind)}</b> {badge(status)} {_muted(op.id)}</div>',
        f'<div style="display:flex;align-items:center;gap:8px;margin:4px 0">'
        f'<div style="flex:1;min-width:200px;height:6px;border-radius:3px;background:rgba(128,128,128,.25)">'
        f'<div class="proximity-progress" style="width:{percent}%;height:100%;border-radius:3px;'
        f'background:{colour}"></div></div><span style="font-size:12px">{percent}%</span></div>',
    ]
    if op.steps:
        parts.append(f'<div style="font-size:12px;margin:4px 0">{"".join(_step_marks(op))}</div>')
    if op.error and status in {"failed", "cancelled"}:
        step = op.result.get("failed_step")
        where = f" (step {esc(step)})" if isinstance(step, str) else ""
        parts.append(
            f'<div class="proximity-error" style="color:{_COLOURS["bad"]};margin:4px 0">{esc(op.error)}{where}</div>'
        )
    if events:
        lines = "".join(
            f'<tr><td style="{_TD};{_MUTED};white-space:nowrap">{esc(e.time.strftime("%H:%M:%S"))}</td>'
            f'<td style="{_TD};{_MUTED}">{esc(e.step or "")}</td>'
            f'<td style="{_TD}{";color:" + _COLOURS["bad"] if e.level == "error" else ""}">'
            f"{_text(e.message, compact=True)}</td></tr>"
            for e in events
        )
        parts.append(f'<table class="proximity-events" style="{_TABLE};font-size:12px">{lines}</table>')
    if note:
        parts.append(f'<div style="{_MUTED};font-size:12px">{esc(note)}</div>')
    return (
        f'<div class="proximity-operation" data-operation-id="{esc(op.id)}" data-status="{esc(status)}" '
        f'style="{_CARD}">{"".join(parts)}</div>'
    )


def operation_text(op: CardOperation, events: Sequence[CardEvent] = ()) -> str:
    """The plain-text twin of the card (for frontends without HTML)."""
    percent = round(max(0.0, min(1.0, _fraction(op, events))) * 100)
    text = f"{op.kind} {op.id}: {op.status.value} {percent}%"
    if op.current_step and not op.finished:
        text += f" (step {op.current_step})"
    if op.error and op.status.value in {"failed", "cancelled"}:
        text += f": {op.error}"
    if events:
        text += f"\n  {events[-1].message}"
    return text
