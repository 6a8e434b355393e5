"""Hostile-input run helpers: a raw HTTP client, hostile values, request builders, the ledger."""
