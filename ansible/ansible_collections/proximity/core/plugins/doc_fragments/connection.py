"""The connection options every proximity.core module takes (plugins/module_utils/proximity.py)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  data_dir:
    description:
      - Local connection (C(Proximity.local())), the directory of the SQLite database and key file.
      - Default the user data directory. Environment fallback E(PROXIMITY_DATA_DIR).
    type: path
  database_url:
    description:
      - Local connection, a C(postgresql+psycopg://...) URL instead of SQLite. Environment fallback
        E(PROXIMITY_DATABASE_URL).
    type: str
  secret_key:
    description:
      - Local connection, the Fernet key that encrypts secrets at rest (else the key file in O(data_dir)).
        Environment fallback E(PROXIMITY_SECRET_KEY).
    type: str
  catalog_paths:
    description: Local connection, extra catalog directories (one entry per file).
    type: list
    elements: path
  agent:
    description:
      - The C(host:port) of a C(proximity-agent) (C(Proximity.connect())). When set, the local options are
        not used (a warning says so if some are set). Environment fallback E(PROXIMITY_AGENT).
    type: str
  token:
    description:
      - The agent bearer token; its user decides what the task may see and do. Required with O(agent).
        Environment fallback E(PROXIMITY_TOKEN).
    type: str
  ca_file:
    description:
      - The CA of the agent's certificate. Without any of O(ca_file), O(cert_file), O(key_file), a loopback
        O(agent) is reached in plaintext and any other with the system's CAs. Environment fallback
        E(PROXIMITY_CA_FILE).
    type: path
  cert_file:
    description: A client certificate for the agent. Environment fallback E(PROXIMITY_CERT_FILE).
    type: path
  key_file:
    description: The key of O(cert_file). Environment fallback E(PROXIMITY_KEY_FILE).
    type: path
notes:
  - "The module imports C(proximity_sdk); run it with a Python that has the C(proximity) package
    (C(ansible_python_interpreter)), normally on the controller (C(connection: local))."
  - With a local connection, operations run inside the module's process, so it waits for them to end.
  - "Set the connection once for every module of the collection with C(module_defaults) for
    C(group/proximity.core.proximity)."
"""
