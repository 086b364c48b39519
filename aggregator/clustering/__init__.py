"""Clustering: an article's features and signature (signature), the decision as it arrives
(cluster, clusterer, index), the window re-assessed in the background (refine, reassess) and
rebuilt (recluster). May import ingest and the base modules."""
