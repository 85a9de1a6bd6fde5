"""No literal password reaches a deployment: rendering over the whole corpus and the built-in catalog."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from proximity_sdk.catalog.catalog import Catalog
from proximity_sdk.catalog.render import render_project
from proximity_sdk.catalog.secrets import is_secret_name, is_secret_value
from proximity_sdk.errors import ValidationError
from proximity_sdk.models.catalog import CatalogApp

_URL_PW = re.compile(r"://[^:/@\s]*:([^@/\s]+)@")
_QUERY_PW = re.compile(r"[?&;](?:p|pass|password|pwd)=([^&;#\s]+)", re.IGNORECASE)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _env_items(app: CatalogApp) -> Iterator[tuple[str, str, Any]]:
    for service_name, service in app.services.items():
        env = service.get("environment") or {}
        for name, value in env.items():
            yield service_name, name, value


def _known_literals(app: CatalogApp) -> set[str]:
    """Secret values written in the entry: secret-named env values and passwords inside URLs."""
    secret: set[str] = set()
    plain: set[str] = set()
    for _, name, value in _env_items(app):
        if is_secret_name(name) and is_secret_value(value):
            secret.add(value)
        elif isinstance(value, str):
            plain.add(value)
        for text in _strings(value):
            secret.update(m for m in _URL_PW.findall(text) + _QUERY_PW.findall(text) if not m.startswith("$"))
    for service in app.services.values():
        command = service.get("command")
        for text in _strings(command):
            for m in re.finditer(r"--(?:requirepass|password)[ =](\S+)", text):
                secret.add(m.group(1))
    # a password equal to a user or database name cannot be told apart where it is used as a name
    return secret - plain


def _resolve(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env[m.group(1)], value)


def test_no_literal_secret_survives_in_any_compat_entry(compat_catalog: Catalog) -> None:
    checked = 0
    for app in compat_catalog.list():
        literals = _known_literals(app)
        project = render_project(app)
        compose_strings = list(_strings(project.compose))
        for text in compose_strings:
            assert text not in literals, (app.id, text)
            for pw in _URL_PW.findall(text) + _QUERY_PW.findall(text):
                assert pw.startswith("${"), (app.id, text)
        for value in project.env.values():
            assert value not in literals, app.id
        # secret-named variables hold only references, and each reference resolves from .env
        rendered = project.compose["services"]
        for svc, name, value in _env_items(app):
            if is_secret_name(name) and is_secret_value(value):
                assert re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", rendered[svc]["environment"][name]), (
                    app.id,
                    name,
                )
        for text in compose_strings:
            _resolve(text, project.env)  # KeyError if a reference is missing from .env
        # the compose text is what gets written: it must not hold any secret value either
        text = project.compose_text()
        for value in project.env.values():
            assert value not in text
        checked += bool(literals)
    assert checked >= 50  # the corpus really has literal secrets to remove


def test_shared_literals_stay_shared_across_services(compat_catalog: Catalog) -> None:
    for app in compat_catalog.list():
        project = render_project(app)
        rendered = {
            (svc, name): value
            for svc, service in project.compose["services"].items()
            for name, value in (service.get("environment") or {}).items()
        }
        by_literal: dict[str, set[str]] = {}
        for svc, name, value in _env_items(app):
            if is_secret_name(name) and is_secret_value(value):
                by_literal.setdefault(value, set()).add(_resolve(rendered[(svc, name)], project.env))
        for literal, resolved in by_literal.items():
            assert len(resolved) == 1, (app.id, literal)


def test_gitea_database_password_is_one_generated_value(compat_catalog: Catalog) -> None:
    project = render_project(compat_catalog.get("gitea"))
    services = project.compose["services"]
    web = _resolve(services["gitea"]["environment"]["GITEA__database__PASSWD"], project.env)
    db = _resolve(services["db"]["environment"]["POSTGRES_PASSWORD"], project.env)
    assert web == db
    assert web != "gitea_password"
    assert len(web) >= 24
    assert project.secrets == project.env
    assert set(project.generated) == set(project.env)
    # a second deployment gets different secrets
    assert render_project(compat_catalog.get("gitea")).env != project.env


def test_url_and_command_passwords_follow_the_database(compat_catalog: Catalog) -> None:
    hedgedoc = render_project(compat_catalog.get("hedgedoc"))
    url = _resolve(hedgedoc.compose["services"]["hedgedoc"]["environment"]["CMD_DB_URL"], hedgedoc.env)
    db_pw = _resolve(hedgedoc.compose["services"]["db"]["environment"]["POSTGRES_PASSWORD"], hedgedoc.env)
    assert url == f"postgres://hedgedoc:{db_pw}@db:5432/hedgedoc"
    nocodb = render_project(compat_catalog.get("nocodb"))
    nc = _resolve(nocodb.compose["services"]["nocodb"]["environment"]["NC_DB"], nocodb.env)
    assert f"p={_resolve(nocodb.compose['services']['db']['environment']['POSTGRES_PASSWORD'], nocodb.env)}&" in nc
    redis = render_project(compat_catalog.get("redis"))
    assert "redis_password" not in redis.compose_text()
    assert redis.compose["services"]["redis"]["command"].startswith("redis-server --requirepass ${")


def test_password_hash_is_the_hash_of_a_kept_password(compat_catalog: Catalog) -> None:
    import hashlib

    project = render_project(compat_catalog.get("graylog"))
    assert (
        project.env["GRAYLOG_ROOT_PASSWORD_SHA2"]
        == hashlib.sha256(project.env["GRAYLOG_ROOT_PASSWORD"].encode()).hexdigest()
    )


def test_laravel_app_key_keeps_its_shape(compat_catalog: Catalog) -> None:
    project = render_project(compat_catalog.get("snipe-it"))
    key = project.env["APP_KEY"]
    assert key.startswith("base64:")
    assert key != "base64:change_me"
    assert len(key) == len("base64:") + 44


def test_env_file_quotes_values() -> None:
    app = _app({"web": {"image": "x/y:1", "environment": {"API_KEY": "literal"}}})
    project = render_project(app)
    assert project.env_text() == f"API_KEY='{project.env['API_KEY']}'\n"
    assert "version" not in project.compose


def test_reused_secrets_are_kept(compat_catalog: Catalog) -> None:
    first = render_project(compat_catalog.get("nextcloud"))
    again = render_project(compat_catalog.get("nextcloud"), secrets=first.secrets)
    assert again.env == first.env
    assert again.generated == frozenset()


def _app(services: dict[str, Any], **extra: Any) -> CatalogApp:
    return CatalogApp.model_validate(
        {"id": "t", "name": "T", "version": "1", "description": "", "category": "X",
         "docker_compose": {"version": "3.8", "services": services}, **extra}
    )  # fmt: skip


def test_user_overrides_plain_secret_and_new() -> None:
    app = _app(
        {
            "web": {"image": "x/web:1", "environment": {"DB_PASSWORD": "pw", "GREETING": "hi"}},
            "db": {"image": "postgres:16", "environment": {"POSTGRES_PASSWORD": "pw"}},
        }
    )
    project = render_project(app, environment={"GREETING": "cost $5", "DB_PASSWORD": "chosen-by-me", "EXTRA": "1"})
    web, db = (
        project.compose["services"]["web"]["environment"],
        project.compose["services"]["db"]["environment"],
    )
    assert web["GREETING"] == "cost $$5"  # compose would interpolate a bare $
    assert web["EXTRA"] == "1"  # unknown names go to the main service
    assert _resolve(web["DB_PASSWORD"], project.env) == "chosen-by-me"
    assert _resolve(db["POSTGRES_PASSWORD"], project.env) == "chosen-by-me"  # still shared
    assert "chosen-by-me" not in project.compose_text()
    assert "DB_PASSWORD" not in project.generated


def test_user_override_of_new_secret_name_goes_to_env() -> None:
    app = _app({"web": {"image": "x/web:1"}})
    project = render_project(app, environment={"API_TOKEN": "tok"})
    assert project.compose["services"]["web"]["environment"]["API_TOKEN"] == "${API_TOKEN}"
    assert project.env == {"API_TOKEN": "tok"}


@pytest.mark.parametrize(
    ("environment", "field"),
    [
        ({"1BAD": "x"}, "environment"),
        ({"BAD-NAME": "x"}, "environment"),
        ({"OK": 5}, "environment.OK"),
        ({"DB_PASSWORD": "it's"}, "environment.DB_PASSWORD"),
        ({"DB_PASSWORD": "two\nlines"}, "environment.DB_PASSWORD"),
    ],
)
def test_bad_overrides_are_refused(environment: dict[str, Any], field: str) -> None:
    app = _app({"web": {"image": "x/web:1", "environment": {"DB_PASSWORD": "pw"}}})
    with pytest.raises(ValidationError) as info:
        render_project(app, environment=environment)
    assert info.value.field == field


def test_undeclared_reference_is_refused() -> None:
    app = _app({"web": {"image": "x/web:1", "environment": {"A": "${NOT_DECLARED}", "B": "${TZ:-UTC}"}}})
    with pytest.raises(ValidationError) as info:
        render_project(app)
    assert "NOT_DECLARED" in str(info.value)


def test_rendered_compose_is_json_round_trippable(compat_catalog: Catalog) -> None:
    for app in compat_catalog.list():
        project = render_project(app)
        assert json.loads(project.compose_text()) == project.compose
        assert app.docker_compose.get("version") is not None  # the catalog entry itself is untouched


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("MYSQL_PASSWORD", True), ("POSTGRES_PASSWORD", True), ("GITEA__database__PASSWD", True),
        ("DB_PASS", True), ("JWT_SECRET", True), ("SECRET_KEY_BASE", True), ("APP_KEY", True),
        ("TS_AUTHKEY", True), ("database__connection__password", True), ("SECRETS_email_password", True),
        ("KEY", True), ("ADMIN_TOKEN", True), ("requirepass", True), ("MINIO_SECRET_KEY", True),
        ("MINIO_ACCESS_KEY", False), ("PUBLIC_KEY", False), ("POSTGRES_USER", False),
        ("PASSWORD_FILE", False), ("PASSWORD_MIN_LENGTH", False), ("DB_HOST", False), ("MONKEY", False),
        ("BYPASS", False), ("TZ", False),
        ("MARIADB_RANDOM_ROOT_PASSWORD", False), ("MYSQL_ALLOW_EMPTY_PASSWORD", False),
    ],
)  # fmt: skip
def test_secret_name_rule(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret
