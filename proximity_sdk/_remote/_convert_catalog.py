"""Catalog messages to models (the remote client's catalog; re-exported by ``_convert``)."""

from __future__ import annotations

from proximity_sdk._pb.proximity.v1 import catalog_pb2
from proximity_sdk._remote._convert_base import _enum_from_pb, _json, _opt
from proximity_sdk.models.catalog import CatalogApp, CatalogProblem, CatalogShadowing, CatalogStats, SecretSpec

__all__ = ["catalog_app_from_pb", "catalog_problem_from_pb", "catalog_shadowing_from_pb", "catalog_stats_from_pb"]


_SECRET_KINDS = ("password", "hex", "base64", "app-key", "sha256")


def catalog_app_from_pb(m: catalog_pb2.CatalogApp) -> CatalogApp:
    secrets = [SecretSpec(name=s.name, length=s.length, of=_opt(s, "of"), description=_opt(s, "description"),
                          kind=_enum_from_pb("SECRET_KIND_", catalog_pb2.SecretKind, s.kind, _SECRET_KINDS,
                                             "password"))
               for s in m.secrets]
    return CatalogApp(id=m.id, name=m.name, version=m.version, description=m.description, category=m.category,
                      icon=_opt(m, "icon"), docker_compose=_json(m.docker_compose_json, {}), tags=list(m.tags),
                      min_memory=m.min_memory, min_cpu=m.min_cpu, min_disk=_opt(m, "min_disk"), ports=list(m.ports),
                      volumes=_json(m.volumes_json, []), environment=dict(m.environment), author=_opt(m, "author"),
                      website=_opt(m, "website"), main_service=_opt(m, "main_service"),
                      main_port=_opt(m, "main_port"), health_path=_opt(m, "health_path"), secrets=secrets,
                      os_template=_opt(m, "os_template"))


def catalog_stats_from_pb(m: catalog_pb2.CatalogStats) -> CatalogStats:
    return CatalogStats(total_apps=m.total_apps, total_categories=m.total_categories,
                        by_category=dict(sorted(m.by_category.items())), by_source=dict(m.by_source),
                        problems=m.problems, shadowed=m.shadowed)


def catalog_problem_from_pb(m: catalog_pb2.CatalogProblem) -> CatalogProblem:
    return CatalogProblem(source=m.source, origin=m.origin, app_id=_opt(m, "app_id"), field=_opt(m, "field"),
                          message=m.message)


def catalog_shadowing_from_pb(m: catalog_pb2.CatalogShadowing) -> CatalogShadowing:
    return CatalogShadowing(app_id=m.app_id, kept_origin=m.kept_origin, kept_source=m.kept_source,
                            shadowed_origin=m.shadowed_origin, shadowed_source=m.shadowed_source)
