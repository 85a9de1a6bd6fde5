"""Public data types (pydantic v2). Request models forbid unknown fields; response models tolerate them."""
