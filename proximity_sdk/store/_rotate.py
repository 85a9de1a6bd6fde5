"""Secret key rotation: re-encrypt every secret column under a new key without a window of loss.

Order of events (each step leaves a state from which nothing is lost):

1. key file (when the key lives in one) rewritten atomically as ``new`` + old keys: both decrypt;
2. one transaction re-encrypts every ``info={"secret": True}`` column, canary included; a failure
   rolls it all back and the data stays readable with the old key (still in the file);
3. only after the commit, the key file is rewritten with the new key alone.

A crash between 2 and 3 leaves both keys in the file, which is harmless; rotating again tidies it.
Keys given as ``secret_key=`` or ``$PROXIMITY_SECRET_KEY`` cannot be rewritten by us: the caller
must pass the new key (and keep it safe) before rotating, then switch its configuration to it.
"""

from __future__ import annotations

from sqlalchemy import and_, select, update

from proximity_sdk.errors import ValidationError
from proximity_sdk.store._common import StoreContext
from proximity_sdk.store.base import Base
from proximity_sdk.store.crypto import SecretBox, parse_keys, write_key_file
from proximity_sdk.store.tables import secret_columns

__all__ = ["rotate_secret_key"]


def rotate_secret_key(ctx: StoreContext, new_key: str | bytes | None) -> str:
    old = ctx.box
    if new_key is None:
        if old.source != "file":
            raise ValidationError(
                "give new_key: the current key comes from "
                + ("secret_key=" if old.source == "argument" else "the environment")
                + ", so the new one must be saved by you before rotating",
                field="new_key",
            )
        key = SecretBox.generate_key().encode()
    else:
        keys = parse_keys(new_key, origin="new_key")
        if len(keys) != 1:
            raise ValidationError("new_key must be exactly one key", field="new_key")
        key = keys[0]
    box = old.with_primary(key)
    if old.source == "file" and old.key_file is not None:
        write_key_file(old.key_file, box.keys, replace=True)  # step 1
    tables = Base.metadata.tables
    # step 2: all tables in one transaction (the session context commits once at the end)
    with ctx.session(immediate=True) as s:
        for name, columns in secret_columns().items():
            table = tables[name]
            pk = list(table.primary_key.columns)
            for row in s.execute(select(*pk, *(table.c[c] for c in columns)).with_for_update()).all():
                values = {
                    c: box.reencrypt(token, what=f"a value in {name}.{c}")
                    for c in columns
                    if (token := row._mapping[table.c[c]]) is not None
                }
                if values:
                    s.execute(update(table).where(and_(*(col == row._mapping[col] for col in pk))).values(**values))
    if old.source == "file" and old.key_file is not None:
        write_key_file(old.key_file, [key], replace=True)  # step 3
        ctx.box = SecretBox([key], source="file", key_file=old.key_file)
    else:
        # keep the old keys in memory too: other sessions may still hold values read before
        ctx.box = box
    return key.decode()
