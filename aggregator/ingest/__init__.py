"""Ingest: a source to cleaned article text. Fetching (fetch) within the network policy, the
sources followed (feeds), feed parsing (parse), main-text extraction and cleaning (extract,
provenance). May import the base modules only."""
