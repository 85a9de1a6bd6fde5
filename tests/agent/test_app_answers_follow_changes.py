"""GetApp and ListApps answer from messages kept per App (servicers/apps._AppMessages): an app that
changed, however it changed, is answered as it is now, and an unchanged one as before."""

from __future__ import annotations

import json

from sqlalchemy import Text, cast, select, update

from proximity_sdk._pb.proximity.v1 import apps_pb2, apps_pb2_grpc
from proximity_sdk._wire._base import json_to_pb
from proximity_sdk._wire.apps import app_from_pb
from proximity_sdk.models.app import Port
from proximity_sdk.store.tables import AppRow
from tests.agent.conftest import Agent


def test_answers_follow_every_change_of_an_app(agent: Agent) -> None:
    host = agent.px.hosts.get("lab")
    app = agent.px.store.apps.create(
        hostname="follow-1", host_id=host.id, owner_id=agent.admin_id, ports=[Port(service="web", port=80)]
    )
    apps = agent.stub(apps_pb2_grpc.AppServiceStub, agent.admin)

    def answered() -> tuple[apps_pb2.App, apps_pb2.App]:
        got = apps.GetApp(apps_pb2.GetAppRequest(app_id=app.id)).app
        listed = [a for a in apps.ListApps(apps_pb2.ListAppsRequest(page_size=100)).apps if a.id == app.id]
        assert len(listed) == 1
        return got, listed[0]

    first, _ = answered()
    assert answered() == (first, first)  # unchanged: the same answer again
    agent.px.store.apps.update(app.id, address="10.0.0.7", ports=[Port(service="web", port=8080)])
    for message in answered():
        assert (message.address, [p.port for p in message.ports]) == ("10.0.0.7", [8080])
    now = agent.px.store.apps.get(app.id)
    with agent.px.store.engine.begin() as conn:  # a writer that leaves updated_at as it was
        conn.execute(
            update(AppRow).where(AppRow.id == app.id).values(config={"usage": {"cpu": 0.5}}, updated_at=now.updated_at)
        )
    for message in answered():
        assert app_from_pb(message).config == {"usage": {"cpu": 0.5}}
        assert app_from_pb(message) == agent.px.store.apps.get(app.id)


def test_the_config_is_answered_as_the_text_the_store_read_it_from(agent: Agent) -> None:
    """The text is handed on, not encoded again: the database's, as SQLAlchemy wrote it (with
    spaces, keys in insertion order), where encoding the dict would give sorted compact text.
    A config changed since is answered as it is now."""
    host = agent.px.hosts.get("lab")
    config = {"main_port": 3000, "compose_text": "services: {}\n"}
    app = agent.px.store.apps.create(hostname="text-1", host_id=host.id, owner_id=agent.admin_id, config=config)
    apps = agent.stub(apps_pb2_grpc.AppServiceStub, agent.admin)

    def held() -> str:
        with agent.px.store.engine.connect() as conn:
            text = conn.execute(select(cast(AppRow.config, Text)).where(AppRow.id == app.id)).scalar_one()
        assert isinstance(text, str)
        return text

    def answered() -> list[str]:
        got = apps.GetApp(apps_pb2.GetAppRequest(app_id=app.id)).app
        listed = [a for a in apps.ListApps(apps_pb2.ListAppsRequest(page_size=100)).apps if a.id == app.id]
        return [got.config_json, *(a.config_json for a in listed)]

    assert held() != json_to_pb(config)  # the database's own text, not ours
    assert answered() == [held(), held()]
    agent.px.store.apps.update(app.id, config={"main_port": 8080})
    assert answered() == [held(), held()] and json.loads(held()) == {"main_port": 8080}
