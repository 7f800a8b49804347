"""``python -m vlmhb.cli``: the same as the ``vlmhb`` command."""

from vlmhb.cli.main import main

main()
