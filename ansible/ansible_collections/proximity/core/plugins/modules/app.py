#!/usr/bin/python
# Copyright (c) 2026 Proximity developers
# SPDX-License-Identifier: MIT
# (ansible-test's GPLv3 header rule is answered in tests/sanity/ignore-*.txt)
"""proximity.core.app: a Proximity app in the wanted state, found by its hostname."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: app
short_description: Deploy, start, stop and remove Proximity apps
version_added: "0.1.0"
description:
  - Makes sure a Proximity app (a catalog app in its own LXC container on Proxmox VE) is in the wanted
    state. The app is found by its O(name) (its hostname) on O(host); nothing else identifies it.
  - V(present) deploys the app when it is missing and leaves an existing one as it is; V(started) and
    V(stopped) deploy it if needed and start or stop it; V(absent) deletes it (its container is destroyed).
  - When O(resources) differ from the app's, the app is resized (live when running); when O(node)
    differs, the app is migrated there. An existing app that runs another catalog app than O(catalog_id)
    is never replaced silently; the task fails.
  - O(environment) is used at deploy time only; changing it later does not change the app.
  - Supports check mode (reports what would change, does nothing) and diff mode (C(status),
    C(catalog_id), C(node) and C(resources) before and after).
  - Runs on the controller (or wherever the task is delegated) with the C(proximity) Python package
    installed in the interpreter Ansible uses.
author:
  - Proximity developers (@proximity)
requirements:
  - python >= 3.11
  - proximity-sdk (the Python distribution of the C(proximity_sdk) package)
options:
  name:
    description: The app's hostname, its identity on the host (RFC 1123 label).
    type: str
    required: true
    aliases: [hostname]
  catalog_id:
    description:
      - The catalog app to deploy (see M(proximity.core.catalog_info)). Required when the app must be deployed.
      - When the app exists and runs another catalog app, the task fails.
    type: str
  host:
    description:
      - The Proxmox host (its name or id) the app lives on. Without it the app is looked up on every host
        (the task fails when several have one by that name) and deployed to the default host.
    type: str
  node:
    description:
      - The node the app should run on. At deploy time, the node to place it on (by default the best node).
      - For an existing app on another node, the app is migrated.
    type: str
  environment:
    description: Environment values for the app's compose project, used at deploy time only. Never logged
      (the values are often passwords).
    type: dict
  resources:
    description: Cores, memory, swap and disk of the container; fields left out take the defaults at deploy
      time and stay as they are afterwards. A smaller disk is refused (Proxmox only grows disks).
    type: dict
    suboptions:
      cores:
        type: int
        description: CPU cores.
      memory_mb:
        type: int
        description: Memory in MiB.
      swap_mb:
        type: int
        description: Swap in MiB.
      disk_gb:
        type: int
        description: Root disk in GiB.
  state:
    description: What the app should be.
    type: str
    choices: [present, started, stopped, absent]
    default: present
  update:
    description:
      - Update an existing app when something newer exists (a newer catalog version, or new digests behind
        floating image tags, found by a pull in its container), with a safety backup first that is restored
        if the update fails. Needs the app running. In check mode nothing is pulled or changed, and only a newer
        catalog version is reported as an update it would make.
    type: bool
    default: false
  force:
    description:
      - With O(state=stopped), kill the container when it does not shut down within O(stop_timeout).
      - Left out, the app's own default applies. A compose app is not killed. A native OCI app is
        killed after its grace period, as C(docker stop) does.
    type: bool
  stop_timeout:
    description:
      - Seconds a clean shutdown may take (O(state=stopped)), 1 to 3600.
      - Left out, the app's own default applies. A compose app gets 60. A native OCI app gets its
        service's C(stop_grace_period), else 10.
    type: int
  destroy:
    description: With O(state=absent), destroy the container. V(false) only forgets an adopted app's record.
    type: bool
    default: true
  wait:
    description:
      - Wait for the operation to end and return the resulting app.
      - With a local connection the operation runs in the module's process, which waits for it anyway.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each operation (the operation goes on if this runs out; the task fails).
    type: int
    default: 900
extends_documentation_fragment:
  - proximity.core.connection
seealso:
  - module: proximity.core.app_info
  - module: proximity.core.backup
  - module: proximity.core.catalog_info
"""

EXAMPLES = r"""
- name: Gitea runs on the lab host
  proximity.core.app:
    name: git-1
    catalog_id: gitea
    host: lab
    resources:
      cores: 2
      memory_mb: 2048
    environment:
      GITEA__server__DOMAIN: git.example.lan
    state: started

- name: Stop it (with --check, only says it would)
  proximity.core.app:
    name: git-1
    state: stopped

- name: Through an agent, connection set once for the whole play
  module_defaults:
    group/proximity.core.proximity:
      agent: agent.example:50051
      token: "{{ proximity_token }}"
      ca_file: /etc/proximity/ca.pem
  proximity.core.app:
    name: wiki
    catalog_id: wikijs
    state: present

- name: Gone, container destroyed
  proximity.core.app:
    name: git-1
    state: absent
"""

RETURN = r"""
app:
  description: The app after the task (without its rendered compose C(config)); absent after O(state=absent)
    or when check mode would have deployed it.
  returned: when the app exists
  type: dict
  sample: {"id": "01J...", "hostname": "git-1", "status": "running", "catalog_id": "gitea", "node": "pve1",
           "vmid": 100, "address": "10.0.0.20", "url": "http://10.0.0.20:3000",
           "resources": {"cores": 2, "memory_mb": 2048, "swap_mb": 512, "disk_gb": 8}}
operation:
  description: The id of the last operation started (see C(px.operations.get())); null when nothing was done.
  returned: always
  type: str
operations:
  description: Every operation the task started, in order (deploy, then stop, for example).
  returned: always
  type: list
  elements: str
actions:
  description: What was (or, in check mode, would be) done, in order, e.g. V(deploy), V(stop).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.proximity.core.plugins.module_utils.proximity import (
    app_view,
    client,
    connection_args,
    find_app,
)

_RESOURCE_FIELDS = ("cores", "memory_mb", "swap_mb", "disk_gb")


def _facts(app):
    if app is None:
        return {}
    return {
        "status": app.status.value if hasattr(app.status, "value") else str(app.status),
        "catalog_id": app.catalog_id,
        "catalog_version": app.catalog_version,
        "node": app.node,
        "resources": app.resources.model_dump(mode="json"),
    }


def _wanted_resources(params):
    given = params.get("resources") or {}
    return {k: v for k, v in given.items() if k in _RESOURCE_FIELDS and v is not None}


class AppTask:
    def __init__(self, module, px):
        self.module = module
        self.px = px
        self.p = module.params
        self.actions = []
        self.operations = []

    def _run(self, action, submit):
        """Record the action; outside check mode start it and (with wait) return the app it gives."""
        self.actions.append(action)
        if self.module.check_mode:
            return None
        handle = submit()
        self.operations.append(handle.id)
        if not self.p["wait"]:
            return None
        return handle.wait(timeout=self.p["timeout"])

    def _resources(self, wanted):
        from proximity_sdk import Resources

        try:
            return Resources(**wanted)
        except ValueError as exc:  # pydantic's ValidationError: say which field and why, no traceback
            problems = getattr(exc, "errors", list)()
            text = "; ".join(f"resources.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in problems) or str(exc)
            self.module.fail_json(msg=f"invalid resources: {text}", error="ValidationError", field="resources")
            return None

    def run(self, before):
        p = self.p
        if before is not None and p["catalog_id"] and before.catalog_id != p["catalog_id"]:
            self.module.fail_json(
                msg=f"app {p['name']!r} exists and runs catalog app {before.catalog_id!r}, not {p['catalog_id']!r}; "
                "Proximity does not replace apps: remove it first (state=absent) or choose another name",
                app=app_view(before),
            )
        if p["state"] == "absent":
            return self.absent(before)
        app, after = self.present(before)
        if p["state"] in ("started", "stopped"):
            app, after = self.power(app, after)
        return app, after

    def absent(self, before):
        if before is None:
            return None, {}
        self._run("delete", lambda: self.px.apps.delete(before.id, destroy=self.p["destroy"]))
        return None, {}

    def present(self, app):
        p = self.p
        if app is None:
            if not p["catalog_id"]:
                self.module.fail_json(msg=f"app {p['name']!r} does not exist: catalog_id is needed to deploy it")
            self.px.catalog.get(p["catalog_id"])  # an unknown id fails here, in check mode too
            resources = self._resources(_wanted_resources(p)) if p.get("resources") else None
            deployed = self._run(
                "deploy",
                lambda: self.px.apps.deploy(
                    p["catalog_id"],
                    hostname=p["name"],
                    host=p["host"],
                    node=p["node"],
                    environment=p["environment"],
                    resources=resources,
                ),
            )
            after = {
                "status": "running",
                "catalog_id": p["catalog_id"],
                "node": p["node"],
                "resources": _wanted_resources(p),
            }
            return deployed, (_facts(deployed) if deployed is not None else after)
        after = _facts(app)
        wanted = _wanted_resources(p)
        current = app.resources.model_dump()
        if any(current.get(k) != v for k, v in wanted.items()):
            resources = self._resources(wanted)
            changed = self._run("resize", lambda: self.px.apps.resize(app.id, resources=resources))
            after["resources"] = {**after["resources"], **wanted}
            app = changed or app
        if p["node"] and app.node != p["node"]:
            moved = self._run("migrate", lambda: self.px.apps.migrate(app.id, node=p["node"]))
            after["node"] = p["node"]
            app = moved or app
        # check mode changes nothing: no pull in the container, so only a newer catalog version counts
        if (
            p["update"]
            and app is not None
            and p["state"] != "stopped"
            and self.px.apps.updates(app_id=app.id, pull=not self.module.check_mode)
        ):
            updated = self._run("update", lambda: self.px.apps.update(app.id))
            after["catalog_version"] = (
                getattr(self.px.catalog.get(app.catalog_id), "version", None) if app.catalog_id else app.catalog_version
            )
            app = updated or app
        if app is not None and not self.module.check_mode and self.p["wait"] and self.actions:
            after = _facts(app)
        return app, after

    def power(self, app, after):
        p = self.p
        want = "running" if p["state"] == "started" else "stopped"
        if after.get("status") == want:
            return app, after
        if app is None and not self.module.check_mode:
            # deployed without waiting: it will be running, but cannot be stopped before it is
            self.module.fail_json(
                msg=f"app {p['name']!r} is being deployed (wait: false); it cannot be stopped until that ends",
                operation=self.operations[-1] if self.operations else None,
            )
        if p["state"] == "started":
            result = self._run("start", lambda: self.px.apps.start(app.id))
        else:
            result = self._run("stop", lambda: self.px.apps.stop(app.id, force=p["force"], timeout=p["stop_timeout"]))
        after = dict(after, status=want)
        if result is not None:
            return result, _facts(result)
        return app, after


def argument_spec():
    """The module's options (the connection's included), as DOCUMENTATION lists them."""
    return connection_args(
        name=dict(type="str", required=True, aliases=["hostname"]),
        catalog_id=dict(type="str"),
        host=dict(type="str"),
        node=dict(type="str"),
        environment=dict(type="dict", no_log=True),
        resources=dict(
            type="dict",
            options=dict(
                cores=dict(type="int"), memory_mb=dict(type="int"), swap_mb=dict(type="int"), disk_gb=dict(type="int")
            ),
        ),
        state=dict(type="str", default="present", choices=["present", "started", "stopped", "absent"]),
        update=dict(type="bool", default=False),
        force=dict(type="bool"),  # None: the app's own default (docs/oci.md)
        stop_timeout=dict(type="int"),
        destroy=dict(type="bool", default=True),
        wait=dict(type="bool", default=True),
        timeout=dict(type="int", default=900),
    )


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
    )
    with client(module) as px:
        task = AppTask(module, px)
        before = find_app(px, module.params["name"], host=module.params["host"])
        app, after = task.run(before)
        if app is not None and not module.check_mode:
            app = px.apps.get(app.id)  # the record as it stands now
        result = {
            "changed": bool(task.actions),
            "actions": task.actions,
            "operations": task.operations,
            "operation": task.operations[-1] if task.operations else None,
        }
        if app is not None:
            result["app"] = app_view(app)
        if module._diff:
            result["diff"] = {"before": _facts(before), "after": after}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
