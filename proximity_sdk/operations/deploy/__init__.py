"""Deploy: one operation kind (``deploy``, :mod:`.kind`) with two strategies, :mod:`.compose` and
:mod:`.oci`, and what they share (:mod:`.common`)."""
