#!/usr/bin/python
# Copyright (c) 2026 Proximity developers
# SPDX-License-Identifier: MIT
# (ansible-test's GPLv3 header rule is answered in tests/sanity/ignore-*.txt)
"""proximity.core.app_info: read Proximity apps."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: app_info
short_description: Read Proximity apps
version_added: "0.1.0"
description:
  - Lists Proximity apps (all, one by name, or filtered by status, text or host), with their latest backups
    when asked.
  - Read-only; never reports a change. Supports check mode. A missing app is not an error (O(name) then
    gives an empty list).
extends_documentation_fragment:
  - proximity.core.connection
author:
  - Proximity developers (@proximity)
requirements:
  - proximity-sdk (the Python distribution of the C(proximity_sdk) package)
options:
  name:
    description: Only the app with this hostname.
    type: str
    aliases: [hostname]
  host:
    description: Only apps on this Proxmox host (name or id).
    type: str
  status:
    description: Only apps in this status (V(running), V(stopped), V(error), ...).
    type: str
  search:
    description: Only apps whose hostname or catalog id matches this text.
    type: str
  backups:
    description: Add each app's backups (newest first) as C(backups).
    type: bool
    default: false
seealso:
  - module: proximity.core.app
"""

EXAMPLES = r"""
- name: Everything running
  proximity.core.app_info:
    status: running
  register: running

- name: One app and its backups
  proximity.core.app_info:
    name: git-1
    backups: true
  register: git

- name: Its address
  ansible.builtin.debug:
    msg: "{{ git.apps[0].url }}"
  when: git.apps | length > 0
"""

RETURN = r"""
apps:
  description: The matching apps (without their rendered compose C(config)).
  returned: always
  type: list
  elements: dict
  sample: [{"id": "01J...", "hostname": "git-1", "status": "running", "catalog_id": "gitea", "node": "pve1",
            "url": "http://10.0.0.20:3000"}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.proximity.core.plugins.module_utils.proximity import app_view, client, connection_args


def argument_spec():
    """The module's options (the connection's included), as DOCUMENTATION lists them."""
    return connection_args(
        name=dict(type="str", aliases=["hostname"]),
        host=dict(type="str"),
        status=dict(type="str"),
        search=dict(type="str"),
        backups=dict(type="bool", default=False),
    )


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
    )
    p = module.params
    with client(module) as px:
        search = p["name"] or p["search"]
        apps = px.apps.list(status=p["status"], search=search, host=p["host"])
        if p["name"]:
            apps = [a for a in apps if a.hostname == p["name"]]
        found = []
        for app in apps:
            view = app_view(app)
            if p["backups"]:
                view["backups"] = [b.model_dump(mode="json") for b in px.backups.list(app.id)]
            found.append(view)
    module.exit_json(changed=False, apps=found)


if __name__ == "__main__":
    main()
