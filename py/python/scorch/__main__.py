"""``python -m scorch …`` is the ``scorch`` command."""

from ._cli import main

main()
