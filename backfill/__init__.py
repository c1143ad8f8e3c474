"""The historical migration: contracts -> validate -> ship (SFTP) -> ingest -> reconcile.

Each step is its own module (`validate`, `ship`, `ingest`, `reconcile`, `ledger`); the
`aep-migrate` command lives in `backfill.cli`.
"""
