"""The ``vlmhb`` command: thin Click wiring over ``vlmhb.api`` (``main``), its sub-groups
(``env``, ``data``, ``models``), shared helpers (``common``) and its tables (``tables``)."""
