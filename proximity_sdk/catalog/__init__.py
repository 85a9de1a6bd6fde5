"""The app catalog: format, loading, validation, secret generation.

- `proximity_sdk.catalog.catalog.Catalog` — the loaded catalog: list, search, get, categories,
  stats, reload, errors, shadowed;
- `proximity_sdk.catalog.render.render_project` — the compose project and ``.env`` for one
  deployment, with generated secrets and no literal password;
- `proximity_sdk.catalog.secrets` — which names are secrets, and how a secret is generated;
- `proximity_sdk.catalog.directory.DirectorySource` — entries from a directory of JSON files;
- `proximity_sdk.catalog.loader` — raw entry -> `CatalogApp` or `CatalogProblem`.

The entry format is described in docs/catalog.md; the data types live in
`proximity_sdk.models.catalog`.
"""
