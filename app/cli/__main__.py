"""`python -m app.cli` is `sluice`."""

from app.cli.main import main

main()
