"""`python -m backfill.cli`: the same as the `aep-migrate` console script."""

from backfill.cli import main

main()
