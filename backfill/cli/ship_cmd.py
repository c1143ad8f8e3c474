"""`aep-migrate ship`, `trust-host` and `sftp-server` (issue 5)."""
