#!/usr/bin/python
# Copyright (c) 2026 Proximity developers
# SPDX-License-Identifier: MIT
# (ansible-test's GPLv3 header rule is answered in tests/sanity/ignore-*.txt)
"""proximity.core.catalog_info: read the Proximity catalog."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: catalog_info
short_description: Read the Proximity app catalog
version_added: "0.1.0"
description:
  - Lists the catalog apps Proximity can deploy (all, one category, a search, or one by id) and the categories.
  - Read-only; never reports a change. Supports check mode.
extends_documentation_fragment:
  - proximity.core.connection
author:
  - Proximity developers (@proximity)
requirements:
  - proximity-sdk (the Python distribution of the C(proximity_sdk) package)
options:
  id:
    description: One catalog app by id; the task fails when there is no such app.
    type: str
  search:
    description: Only apps whose id, name, description or tags match this text.
    type: str
  category:
    description: Only apps of this category.
    type: str
seealso:
  - module: proximity.core.app
"""

EXAMPLES = r"""
- name: What is there to deploy?
  proximity.core.catalog_info:
  register: catalog

- name: Git servers
  proximity.core.catalog_info:
    search: git
  register: git

- name: One entry, to read its minimum resources
  proximity.core.catalog_info:
    id: gitea
  register: gitea
"""

RETURN = r"""
apps:
  description: The matching catalog apps (their compose definitions included), sorted as the catalog lists them.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "gitea", "name": "Gitea", "version": "1.22", "category": "Development", "min_memory": 512}]
categories:
  description: Every category of the catalog.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.proximity.core.plugins.module_utils.proximity import client, connection_args


def argument_spec():
    """The module's options (the connection's included), as DOCUMENTATION lists them."""
    return connection_args(
        id=dict(type="str"),
        search=dict(type="str"),
        category=dict(type="str"),
    )


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[("id", "search"), ("id", "category")],
        supports_check_mode=True,
    )
    p = module.params
    with client(module) as px:
        if p["id"]:
            apps = [px.catalog.get(p["id"])]
        elif p["search"]:
            apps = px.catalog.search(p["search"])
            if p["category"]:
                apps = [a for a in apps if a.category == p["category"]]
        else:
            apps = px.catalog.list(category=p["category"])
        result = {
            "changed": False,
            "apps": [a.model_dump(mode="json") for a in apps],
            "categories": list(px.catalog.categories()),
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
