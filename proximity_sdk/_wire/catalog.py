"""``catalog.proto``: catalog apps, stats, problems and shadowings, both directions (CatalogService
takes no request that needs converting).

The remote client imports this module only when it builds a model: the catalog table through an
agent prints the wire messages and loads neither this nor pydantic (``_remote/_catalog.py``).
"""

from __future__ import annotations

from proximity_sdk._pb.proximity.v1 import catalog_pb2
from proximity_sdk._wire._base import enum_to_pb, json_from_pb, json_to_pb, known_enum_from_pb, optional_from_pb
from proximity_sdk.models.catalog import CatalogApp, CatalogProblem, CatalogShadowing, CatalogStats, SecretSpec

__all__ = [
    "catalog_app_from_pb",
    "catalog_app_to_pb",
    "catalog_problem_from_pb",
    "catalog_problem_to_pb",
    "catalog_shadowing_from_pb",
    "catalog_shadowing_to_pb",
    "catalog_stats_from_pb",
    "catalog_stats_to_pb",
]

_SECRET_KINDS = ("password", "hex", "base64", "app-key", "sha256")


def catalog_app_to_pb(app: CatalogApp) -> catalog_pb2.CatalogApp:
    return catalog_pb2.CatalogApp(
        id=app.id,
        name=app.name,
        version=app.version,
        description=app.description,
        category=app.category,
        icon=app.icon,
        docker_compose_json=json_to_pb(app.docker_compose),
        tags=list(app.tags),
        min_memory=app.min_memory,
        min_cpu=app.min_cpu,
        min_disk=app.min_disk,
        ports=list(app.ports),
        volumes_json=json_to_pb(app.volumes),
        environment=dict(app.environment),
        author=app.author,
        website=app.website,
        main_service=app.main_service,
        main_port=app.main_port,
        health_path=app.health_path,
        os_template=app.os_template,
        secrets=[
            catalog_pb2.SecretSpec(
                name=s.name,
                kind=enum_to_pb("SECRET_KIND_", catalog_pb2.SecretKind, s.kind),
                length=s.length,
                of=s.of,
                description=s.description,
            )
            for s in app.secrets
        ],
    )


def catalog_app_from_pb(m: catalog_pb2.CatalogApp) -> CatalogApp:
    secrets = [
        SecretSpec(
            name=s.name,
            length=s.length,
            of=optional_from_pb(s, "of"),
            description=optional_from_pb(s, "description"),
            kind=known_enum_from_pb(
                "SECRET_KIND_", catalog_pb2.SecretKind, s.kind, known=_SECRET_KINDS, default="password"
            ),
        )
        for s in m.secrets
    ]
    return CatalogApp(
        id=m.id,
        name=m.name,
        version=m.version,
        description=m.description,
        category=m.category,
        icon=optional_from_pb(m, "icon"),
        docker_compose=json_from_pb(m.docker_compose_json, default={}),
        tags=list(m.tags),
        min_memory=m.min_memory,
        min_cpu=m.min_cpu,
        min_disk=optional_from_pb(m, "min_disk"),
        ports=list(m.ports),
        volumes=json_from_pb(m.volumes_json, default=[]),
        environment=dict(m.environment),
        author=optional_from_pb(m, "author"),
        website=optional_from_pb(m, "website"),
        main_service=optional_from_pb(m, "main_service"),
        main_port=optional_from_pb(m, "main_port"),
        health_path=optional_from_pb(m, "health_path"),
        secrets=secrets,
        os_template=optional_from_pb(m, "os_template"),
    )


def catalog_stats_to_pb(stats: CatalogStats) -> catalog_pb2.CatalogStats:
    return catalog_pb2.CatalogStats(
        total_apps=stats.total_apps,
        total_categories=stats.total_categories,
        by_category=dict(stats.by_category),
        by_source=dict(stats.by_source),
        problems=stats.problems,
        shadowed=stats.shadowed,
    )


def catalog_stats_from_pb(m: catalog_pb2.CatalogStats) -> CatalogStats:
    return CatalogStats(
        total_apps=m.total_apps,
        total_categories=m.total_categories,
        by_category=dict(sorted(m.by_category.items())),
        by_source=dict(m.by_source),
        problems=m.problems,
        shadowed=m.shadowed,
    )


def catalog_problem_to_pb(problem: CatalogProblem) -> catalog_pb2.CatalogProblem:
    return catalog_pb2.CatalogProblem(
        source=problem.source,
        origin=problem.origin,
        app_id=problem.app_id,
        field=problem.field,
        message=problem.message,
    )


def catalog_problem_from_pb(m: catalog_pb2.CatalogProblem) -> CatalogProblem:
    return CatalogProblem(
        source=m.source,
        origin=m.origin,
        app_id=optional_from_pb(m, "app_id"),
        field=optional_from_pb(m, "field"),
        message=m.message,
    )


def catalog_shadowing_to_pb(shadowing: CatalogShadowing) -> catalog_pb2.CatalogShadowing:
    return catalog_pb2.CatalogShadowing(**shadowing.model_dump())


def catalog_shadowing_from_pb(m: catalog_pb2.CatalogShadowing) -> CatalogShadowing:
    return CatalogShadowing(
        app_id=m.app_id,
        kept_origin=m.kept_origin,
        kept_source=m.kept_source,
        shadowed_origin=m.shadowed_origin,
        shadowed_source=m.shadowed_source,
    )
