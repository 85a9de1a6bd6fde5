"""Turn raw entries into validated `CatalogApp`s, or into `CatalogProblem`s naming the file and field."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pydantic
from pydantic_core import ErrorDetails

from proximity_sdk.catalog.policy import compose_violations
from proximity_sdk.models.catalog import CatalogApp, CatalogProblem
from proximity_sdk.plugins.sources import CatalogSource, RawEntry

__all__ = ["LoadResult", "load_entry", "load_source", "policy_problem"]

log = logging.getLogger(__name__)


class LoadResult:
    """Apps and problems from one source, in the order the source gave them."""

    __slots__ = ("apps", "origins", "problems", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.apps: list[CatalogApp] = []
        self.origins: list[str] = []
        self.problems: list[CatalogProblem] = []


def load_entry(entry: RawEntry, *, source: str) -> CatalogApp | CatalogProblem:
    """Validate one raw entry. Never raises for bad data: the problem is returned instead."""
    if entry.data is None:
        return CatalogProblem(source=source, origin=entry.origin, message=entry.problem or "no data")
    raw_id = entry.data.get("id")
    app_id = raw_id if isinstance(raw_id, str) else None
    try:
        return CatalogApp.model_validate(entry.data)
    except pydantic.ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        first = errors[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        detail = "; ".join(_describe(err) for err in errors)
        return CatalogProblem(source=source, origin=entry.origin, app_id=app_id, field=field, message=detail)


def _describe(error: ErrorDetails) -> str:
    loc = ".".join(str(part) for part in error["loc"])
    msg = error["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def policy_problem(app: CatalogApp, *, source: str, origin: str) -> CatalogProblem | None:
    """The compose policy (``catalog/policy.py``) applied to an entry of an untrusted source: a
    problem naming source, app and the first refused field (every refused field in the message)."""
    violations = compose_violations(app.docker_compose)
    if not violations:
        return None
    detail = "; ".join(f"{field}: {reason}" for field, reason in violations)
    return CatalogProblem(
        source=source,
        origin=origin,
        app_id=app.id,
        field=violations[0][0],
        message=f"refused by the compose policy (source {source!r} is not trusted): {detail}. An admin who "
        f"reviewed this source can trust it: trusted_sources=[{source!r}] (agent setting "
        "catalog_trusted_sources)",
    )


def load_source(source: CatalogSource, *, trusted: bool = False) -> LoadResult:
    """Validate everything a source lists. A source that fails as a whole becomes one problem.
    Entries of an untrusted source must pass the compose policy."""
    result = LoadResult(source.name)
    try:
        entries: Iterable[RawEntry] = list(source.list_entries())
    except Exception as exc:  # a third-party source must not take the whole catalog down
        # members can list problems: the error's text (which may quote what was read) goes to the log only
        log.warning("catalog source %s failed", source.name, exc_info=True)
        result.problems.append(
            CatalogProblem(
                source=source.name,
                origin=source.name,
                message=f"the source failed ({type(exc).__name__}); the agent's log has the details",
            )
        )
        return result
    for entry in entries:
        loaded = load_entry(entry, source=source.name)
        if isinstance(loaded, CatalogProblem):
            result.problems.append(loaded)
            continue
        refused = None if trusted else policy_problem(loaded, source=source.name, origin=entry.origin)
        if refused is not None:
            result.problems.append(refused)
        else:
            result.apps.append(loaded)
            result.origins.append(entry.origin)
    return result
