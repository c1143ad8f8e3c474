"""The live side: desired flows -> plan -> apply; watch; smoke; the `aep-sync` daemon and `aep-smoke`."""
