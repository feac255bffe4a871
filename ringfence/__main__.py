"""`python -m ringfence` is the `ringfence` command."""
from .cli import main

raise SystemExit(main())
