"""Stories: the clusters to publish and their canonical merged stories (edition, story,
novelty), the feeds (publish) and pages (site, pages) that carry them, and the HTTP face that
serves them (serve). May import clustering, ingest and the base modules."""
