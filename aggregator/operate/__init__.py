"""Operating it, on top of every stage: one cycle of fetch, store, assign and publish
(pipeline, poll), the worker pools (workers, dask_workers), the daemon (service), the
operator's views and corrections (admin), the command line (cli), and the quality gates that
run the whole pipeline (evaluate, neardup, extraction_score, story_score). May import every
stage below it."""
