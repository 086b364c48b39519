"""aggregator: a deduplicating news-feed aggregator daemon.

The package is layered by the stages of its data flow; each layer imports only from those
below it (tests/test_layers.py and import-linter's contract in pyproject.toml check it):

    operate/     the cycle (poll, store, assign, publish), worker pools, the daemon, admin,
                 the CLI, and the quality gates that run the whole pipeline
    stories/     cluster -> merged story -> feeds and pages, and their HTTP server
    clustering/  features and signatures -> tiers -> index and clusterer, re-assessment
    ingest/      source -> fetched bytes -> entries -> cleaned article text
    (base)       model, errors, text, minhash, urls, network, config, storage, heap
"""

__version__ = "0.1.0"
