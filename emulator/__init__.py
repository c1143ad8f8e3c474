"""A local Adobe Experience Platform over SQLite state, faithful to Adobe's API contracts.

It imports nothing from `aep/`: it is the other side of the wire.
"""
