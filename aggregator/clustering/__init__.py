"""Clustering: each article placed as it arrives (cluster, clusterer, index), the window
re-assessed in the background (refine, reassess), and their evaluation."""
