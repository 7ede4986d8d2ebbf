"""`python -m trionats`: the same as the `trionats` command."""

from .cli import main

raise SystemExit(main())
