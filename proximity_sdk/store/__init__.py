"""State: SQLAlchemy tables, repositories, migrations, secrets at rest.

``Store.open()`` is the way in; see ``proximity_sdk.store._store.Store``.
"""

from proximity_sdk.store._store import ReadBusy, Store, default_data_dir
from proximity_sdk.store.crypto import KEY_ENV, SecretBox

__all__ = ["KEY_ENV", "ReadBusy", "SecretBox", "Store", "default_data_dir"]
