"""Ingest: sources to articles (fetch, parse, extract, clean, features), the worker
processes that do it, and one ingest cycle wiring the steps."""
