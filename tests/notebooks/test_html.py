"""HTML of models, listings and operation cards: every model has one, text is escaped, secrets never show."""

from __future__ import annotations

import importlib
import json
import pkgutil
from datetime import UTC, datetime, timedelta

import pydantic
import pytest
from pydantic import SecretStr

import proximity_sdk.models
from proximity_sdk.models._html import MASK, HtmlRepr, listing_html, value_html
from proximity_sdk.models._listing import Listing
from proximity_sdk.models.app import App, AppCredentials, Port
from proximity_sdk.models.backup import Backup
from proximity_sdk.models.catalog import CatalogApp
from proximity_sdk.models.host import Host, HostAdd, HostCredentials, Node
from proximity_sdk.models.operation import Operation, OperationEvent
from proximity_sdk.models.resources import Resources
from proximity_sdk.models.ssh import SshAccess
from tests.notebooks._html_check import Parsed, check_safe

NOW = datetime(2026, 11, 25, 12, 30, 5, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>&amp; \' " `</td></table>'
PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA-key-material\n-----END OPENSSH PRIVATE KEY-----\n"
)


def _public_models() -> list[type[pydantic.BaseModel]]:
    found: dict[str, type[pydantic.BaseModel]] = {}
    for info in pkgutil.iter_modules(proximity_sdk.models.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"proximity_sdk.models.{info.name}")
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if isinstance(value, type) and issubclass(value, pydantic.BaseModel):
                found[f"{info.name}.{name}"] = value
    return [found[key] for key in sorted(found)]


PUBLIC_MODELS = _public_models()


def _app(**fields: object) -> App:
    base: dict[str, object] = dict(
        id="app-1",
        hostname="git-1",
        status="running",
        host_id="host-1",
        catalog_id="gitea",
        node="pve1",
        vmid=101,
        address="10.0.0.7",
        url="http://10.0.0.7:3000",
        resources=Resources(cores=2, memory_mb=2048),
        ports=(Port(service="web", port=3000),),
        created_at=NOW,
        updated_at=NOW,
        status_changed_at=NOW,
    )
    base.update(fields)
    return App.model_validate(base)


def test_the_enumeration_sees_the_models_it_must() -> None:
    names = {cls.__name__ for cls in PUBLIC_MODELS}
    assert {
        "App",
        "AppCredentials",
        "Backup",
        "BackupSchedule",
        "BackupTarget",
        "Host",
        "Node",
        "CatalogApp",
        "CatalogStats",
        "Operation",
        "OperationEvent",
        "DiscoveredContainer",
        "Settings",
        "ReconcileReport",
        "JanitorReport",
        "NodeSyncReport",
        "HostCheck",
        "SshAccess",
        "User",
    } <= names
    assert len(PUBLIC_MODELS) >= 50


@pytest.mark.parametrize("cls", PUBLIC_MODELS, ids=lambda c: c.__name__)
def test_every_public_model_renders_html(cls: type[pydantic.BaseModel]) -> None:
    assert issubclass(cls, HtmlRepr) or "_repr_html_" in vars(cls), f"{cls.__name__} has no _repr_html_"
    if "_repr_html_" in vars(cls):
        return  # its own renderer (Operation's card) is tested with real records below
    # a record without data (no validation): every field missing or default must still render
    markup = cls.model_construct()._repr_html_()  # type: ignore[attr-defined]
    parsed = check_safe(markup)
    assert cls.__name__ in parsed.all_text
    assert parsed.attr_values("data-model") == [cls.__name__]


def test_an_app_card_shows_its_fields_with_the_status_as_a_badge() -> None:
    parsed = check_safe(_app()._repr_html_())
    text = parsed.all_text
    for expected in (
        "App",
        "git-1",
        "gitea",
        "pve1",
        "101",
        "10.0.0.7",
        "2026-11-25 12:30:05 UTC",
        "cores=2",
        "memory_mb=2048",
        "service=web",
    ):
        assert expected in text, expected
    statuses = [attrs for tag, attrs in parsed.tags if "proximity-status" in (attrs.get("class") or "")]
    assert len(statuses) == 1
    assert parsed.attr_values("href") == ["http://10.0.0.7:3000"]


def test_hostile_text_is_shown_as_text_never_as_markup() -> None:
    app = _app(
        hostname=HOSTILE,
        catalog_id=HOSTILE,
        config={HOSTILE: HOSTILE, "nested": {"k": [HOSTILE]}},
        url=f'http://x/"onmouseover="alert(1)"{HOSTILE}',
    )
    for markup in (app._repr_html_(), Listing([app])._repr_html_()):
        parsed = check_safe(markup)
        assert HOSTILE.replace("\n", " ") in parsed.all_text  # shown verbatim
        for href in parsed.attr_values("href"):
            assert href.startswith('http://x/"onmouseover=')  # the quote stayed inside the attribute

    entry = CatalogApp(
        id="evil",
        name=HOSTILE,
        version="1",
        description=HOSTILE * 5,
        category=HOSTILE,
        website="javascript:alert(1)",
        docker_compose={"services": {"web": {"image": HOSTILE}}},
    )
    for markup in (entry._repr_html_(), Listing([entry])._repr_html_()):
        parsed = check_safe(markup)
        assert HOSTILE in parsed.all_text or HOSTILE in " ".join(parsed.attr_values("title"))
        assert parsed.attr_values("href") == []  # javascript: is never a link


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "vbscript:x",
    ],
)
def test_only_http_urls_become_links(url: str) -> None:
    parsed = check_safe(_app(url=url)._repr_html_())
    assert parsed.attr_values("href") == []
    assert url.strip() in parsed.all_text


def test_app_credentials_render_masked() -> None:
    creds = AppCredentials(
        app_id="app-1",
        root_password=SecretStr("root-pw-VERY-SECRET"),
        secrets={"DB_PASSWORD": SecretStr("db-pw-VERY-SECRET"), "APP_KEY": SecretStr("")},
    )
    for markup in (creds._repr_html_(), Listing([creds])._repr_html_(), listing_html([creds, _app()])):
        assert "VERY-SECRET" not in markup
        parsed = check_safe(markup)
        assert MASK in parsed.all_text
    card = Parsed(creds._repr_html_()).all_text
    assert "DB_PASSWORD" in card and "APP_KEY" in card  # the names are not secret
    assert card.count(MASK) == 3


def test_host_secrets_and_ssh_keys_given_as_contents_never_render() -> None:
    ssh = SshAccess(key_file=PRIVATE_KEY, known_hosts="pve1 ssh-ed25519 AAAA")
    host = Host(
        id="h1",
        name="lab",
        url="https://pve1:8006",
        auth="token",
        token_id="root@pam!px",
        ssh=ssh,
        created_at=NOW,
        updated_at=NOW,
    )
    add = HostAdd(
        name="lab", url="https://pve1:8006", token_id="root@pam!px", token_secret=SecretStr("tok-VERY-SECRET"), ssh=ssh
    )
    creds = HostCredentials(
        host_id="h1",
        name="lab",
        url="https://pve1:8006",
        auth="password",
        user="root@pam",
        password=SecretStr("pw-VERY-SECRET"),
        ssh=ssh,
    )
    for model in (host, add, creds, ssh):
        for markup in (model._repr_html_(), Listing([model])._repr_html_()):
            assert "VERY-SECRET" not in markup
            assert "key-material" not in markup and "PRIVATE KEY" not in markup
            check_safe(markup)
    assert "pve1 ssh-ed25519 AAAA" in Parsed(ssh._repr_html_()).all_text  # not secret


def test_secrets_nested_in_folded_json_are_masked() -> None:
    value = {"a": {"deep": [SecretStr("deep-VERY-SECRET"), {"x": SecretStr("x-VERY-SECRET")}]}, "b": 1}
    markup = value_html(value)
    assert "VERY-SECRET" not in markup
    parsed = check_safe(markup)
    folded = json.loads(parsed.all_text.split("entries", 1)[1])  # the <pre> after the summary
    assert folded == {"a": {"deep": [MASK, {"x": MASK}]}, "b": 1}


def test_listing_is_a_plain_list_with_a_table() -> None:
    apps = Listing([_app(id=f"a{i}", hostname=f"app-{i}") for i in range(3)])
    assert apps == [_app(id=f"a{i}", hostname=f"app-{i}") for i in range(3)]
    assert isinstance(apps, list)
    assert json.loads(json.dumps(Listing([1, "x"]))) == [1, "x"]
    parsed = check_safe(apps._repr_html_())
    headers = [t for t, _ in parsed.tags if t == "th"]
    assert len(headers) == 7
    assert [t for t, _ in parsed.tags].count("tr") == 4  # header + 3 rows
    for i in range(3):
        assert f"app-{i}" in parsed.all_text
    assert parsed.attr_values("data-count") == ["3"]


def test_an_empty_listing_says_no_items() -> None:
    parsed = check_safe(Listing()._repr_html_())
    assert parsed.all_text.strip() == "no items"
    assert "table" not in {t for t, _ in parsed.tags}


def test_a_long_listing_shows_the_first_rows_and_counts_the_rest() -> None:
    nodes = Listing([Node(host_id="h", name=f"n{i}", status="online", maxmem=8 * 1024**3) for i in range(130)])
    parsed = check_safe(nodes._repr_html_())
    assert [t for t, _ in parsed.tags].count("tr") == 101
    assert "… and 30 more" in parsed.all_text
    assert "8.0 GiB" in parsed.all_text
    assert "n99" in parsed.all_text and "n100" not in parsed.all_text


def test_mixed_and_plain_listings() -> None:
    parsed = check_safe(Listing(["web", "<b>db</b>"])._repr_html_())
    assert "<b>db</b>" in parsed.all_text and "b" not in {t for t, _ in parsed.tags}
    mixed = check_safe(
        Listing(
            [
                _app(),
                Backup(
                    id="b1",
                    app_id="app-1",
                    hostname="git-1",
                    status="completed",
                    size_bytes=5 * 1024**2,
                    created_at=NOW,
                ),
            ]
        )._repr_html_()
    )
    assert "App" in mixed.all_text and "Backup" in mixed.all_text and "5.0 MiB" in mixed.all_text


def _operation(**fields: object) -> Operation:
    base: dict[str, object] = dict(
        id="op-1",
        kind="deploy",
        status="running",
        app_id="app-1",
        steps=("place", "create", "start", "health"),
        current_step="start",
        created_at=NOW,
        updated_at=NOW,
    )
    base.update(fields)
    return Operation.model_validate(base)


def _events(n: int, **fields: object) -> list[OperationEvent]:
    return [
        OperationEvent.model_validate(
            {
                "operation_id": "op-1",
                "seq": i + 1,
                "time": NOW + timedelta(seconds=i),
                "message": f"line {i + 1}",
                **fields,
            }
        )
        for i in range(n)
    ]


def test_an_operation_card_shows_status_progress_and_steps() -> None:
    from proximity_sdk.models._html import operation_card

    parsed = check_safe(operation_card(_operation(), _events(3, progress=0.4, step="start")))
    assert parsed.attr_values("data-status") == ["running"]
    assert "40%" in parsed.all_text
    assert parsed.attr_values("data-step") == ["place", "create", "start", "health"]
    assert "✓ place" in parsed.all_text and "✓ create" in parsed.all_text and "▶ start" in parsed.all_text
    assert "line 3" in parsed.all_text

    done = check_safe(_operation(status="succeeded", current_step=None)._repr_html_())
    assert done.attr_values("data-status") == ["succeeded"] and "100%" in done.all_text
    assert done.all_text.count("✓") == 4


def test_a_failed_operation_card_shows_the_error_escaped() -> None:
    from proximity_sdk.models._html import operation_card

    op = _operation(status="failed", error=HOSTILE, result={"failed_step": "start"})
    parsed = check_safe(operation_card(op, _events(2, level="error", message=HOSTILE, step=HOSTILE)))
    assert parsed.attr_values("data-status") == ["failed"]
    assert HOSTILE in parsed.all_text
    assert "✗ start" in parsed.all_text and "· health" in parsed.all_text


def test_rendering_never_imports_ipython() -> None:
    """IPython is optional: building the HTML (models, listings, operation cards) does not load it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from proximity_sdk.models._listing import Listing\n"
        "from proximity_sdk.models.host import Node\n"
        "import proximity_sdk._notebook, proximity_sdk.engine.handle\n"
        "Listing([Node(host_id='h', name='n')])._repr_html_()\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'IPython'], 'IPython imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
