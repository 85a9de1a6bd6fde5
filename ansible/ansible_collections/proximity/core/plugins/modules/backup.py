#!/usr/bin/python
# Copyright (c) 2026 Proximity developers
# SPDX-License-Identifier: MIT
# (ansible-test's GPLv3 header rule is answered in tests/sanity/ignore-*.txt)
"""proximity.core.backup: back up a Proximity app, prune its old backups, delete one backup."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: backup
short_description: Back up Proximity apps and delete their backups
version_added: "0.1.0"
description:
  - O(state=present) backs up the app O(app) (vzdump, to O(target)) and waits for the backup.
  - "Idempotence: with O(max_age), a new backup is made only when the app has no completed backup on
    O(target) younger than that; a second run within O(max_age) changes nothing. Without O(max_age)
    every run makes a backup (and reports a change)."
  - "Retention: with O(keep_latest), the app's completed backups on O(target) beyond the newest
    O(keep_latest) are deleted (after the new backup, if one was made). Failed backups are neither
    counted nor deleted, and the newest completed backup is never deleted."
  - O(state=absent) deletes the backup O(id) (its archive and record); an unknown id changes nothing.
  - Supports check mode (reports what would be created or deleted, does nothing).
extends_documentation_fragment:
  - proximity.core.connection
author:
  - Proximity developers (@proximity)
requirements:
  - proximity-sdk (the Python distribution of the C(proximity_sdk) package)
options:
  app:
    description: The app's hostname. Required with O(state=present).
    type: str
  host:
    description: The Proxmox host (name or id) of O(app), when several hosts have an app of that name.
    type: str
  id:
    description: The backup to delete (O(state=absent)).
    type: str
  state:
    description: V(present) makes a backup (see O(max_age)); V(absent) deletes backup O(id).
    type: str
    choices: [present, absent]
    default: present
  mode:
    description: vzdump mode.
    type: str
    choices: [snapshot, suspend, stop]
    default: snapshot
  compression:
    description: Archive compression.
    type: str
    choices: [zstd, gzip, lzo, none]
    default: zstd
  target:
    description: A configured backup target's name (default the Proxmox storage C(local)).
    type: str
  note:
    description: A note kept with the backup.
    type: str
  max_age:
    description:
      - Make a backup only when the newest completed backup of the app on O(target) is older than this
        (seconds, or a number with C(s), C(m), C(h), C(d) or C(w)), or when there is none.
    type: str
  keep_latest:
    description: Keep this many of the app's newest completed backups on O(target); delete the older ones.
    type: int
  timeout:
    description: Seconds to wait for each backup or delete operation.
    type: int
    default: 3600
seealso:
  - module: proximity.core.app
  - module: proximity.core.app_info
"""

EXAMPLES = r"""
- name: A fresh backup at most once a day, keeping the last seven
  proximity.core.backup:
    app: git-1
    max_age: 1d
    keep_latest: 7
  register: nightly

- name: A backup before an upgrade, whatever exists
  proximity.core.backup:
    app: git-1
    mode: stop
    note: before upgrade

- name: Delete one backup
  proximity.core.backup:
    id: "{{ nightly.backup.id }}"
    state: absent
"""

RETURN = r"""
backup:
  description: With O(state=present), the newest completed backup of the app on O(target) after the task
    (the new one, or the one young enough that none was made); absent in check mode when one would be made.
  returned: when there is one
  type: dict
  sample: {"id": "01J...", "hostname": "git-1", "status": "completed", "volid": "local:backup/vzdump-lxc-100-...",
           "size_bytes": 1048576, "created_at": "2026-11-25T03:00:00Z"}
created:
  description: Whether a new backup was made (or would be, in check mode).
  returned: always
  type: bool
deleted:
  description: Ids of the backups deleted (or that would be) by O(keep_latest) or O(state=absent).
  returned: always
  type: list
  elements: str
operations:
  description: Ids of the operations started, in order.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.proximity.core.plugins.module_utils.proximity import (
    as_utc,
    client,
    connection_args,
    find_app,
    parse_duration,
    utcnow,
)


def _completed(px, app, target):
    """The app's completed backups on ``target``, newest first."""
    found = [b for b in px.backups.list(app.id, status="completed") if b.target == target]
    return sorted(found, key=lambda b: as_utc(b.completed_at or b.created_at), reverse=True)


def present(module, px, result):
    p = module.params
    try:
        max_age = parse_duration(p["max_age"], "max_age")
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    if p["keep_latest"] is not None and p["keep_latest"] < 1:
        module.fail_json(msg="keep_latest must be 1 or more")
    app = find_app(px, p["app"], host=p["host"])
    if app is None:
        module.fail_json(msg=f"no app named {p['app']!r}" + (f" on host {p['host']!r}" if p["host"] else ""))
    backups = _completed(px, app, p["target"])
    newest = backups[0] if backups else None
    fresh = (
        newest is not None
        and max_age is not None
        and utcnow() - as_utc(newest.completed_at or newest.created_at) < max_age
    )
    if not fresh:
        result["created"] = True
        if not module.check_mode:
            handle = px.backups.create(
                app.id, mode=p["mode"], compression=p["compression"], target=p["target"], note=p["note"]
            )
            result["operations"].append(handle.id)
            made = handle.wait(timeout=p["timeout"])
            backups = [made, *backups]
        else:
            backups = [None, *backups]  # the one that would be made counts as the newest
    if p["keep_latest"] is not None:
        for old in backups[p["keep_latest"] :]:
            result["deleted"].append(old.id)
            if not module.check_mode:
                handle = px.backups.delete(old.id)
                result["operations"].append(handle.id)
                handle.wait(timeout=p["timeout"])
    if backups and backups[0] is not None:
        result["backup"] = px.backups.get(backups[0].id).model_dump(mode="json")


def absent(module, px, result):
    from proximity_sdk.errors import NotFoundError

    try:
        backup = px.backups.get(module.params["id"])
    except NotFoundError:
        return
    result["deleted"].append(backup.id)
    if not module.check_mode:
        handle = px.backups.delete(backup.id)
        result["operations"].append(handle.id)
        handle.wait(timeout=module.params["timeout"])


def argument_spec():
    """The module's options (the connection's included), as DOCUMENTATION lists them."""
    return connection_args(
        app=dict(type="str"),
        host=dict(type="str"),
        id=dict(type="str"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        mode=dict(type="str", default="snapshot", choices=["snapshot", "suspend", "stop"]),
        compression=dict(type="str", default="zstd", choices=["zstd", "gzip", "lzo", "none"]),
        target=dict(type="str"),
        note=dict(type="str"),
        max_age=dict(type="str"),
        keep_latest=dict(type="int", no_log=False),
        timeout=dict(type="int", default=3600),
    )


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[("state", "present", ("app",)), ("state", "absent", ("id",))],
        supports_check_mode=True,
    )
    result = {"changed": False, "created": False, "deleted": [], "operations": []}
    with client(module) as px:
        if module.params["state"] == "present":
            present(module, px, result)
        else:
            absent(module, px, result)
    result["changed"] = result["created"] or bool(result["deleted"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
