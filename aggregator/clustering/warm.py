"""Imported by the server process the worker processes fork from (operate/workers.py,
multiprocessing's forkserver preload), which starts with _AGGREGATOR_FORK_SERVER set: there it
loads what a worker's first page would (prepare.warm_up), once, so that every worker forked
from it starts warm, sharing those pages, instead of importing and loading them itself (about
half a second of a core each). Imported anywhere else it does nothing.

Then every object the server holds is moved out of the garbage collector's reach
(`gc.freeze`, as Python's documentation advises before forking without exec): a worker's
collections do not touch them, so their pages stay shared with the server instead of being
copied into each worker, and the server's own exit, after the daemon's, skips a last
collection of them (0.11 -> 0.02 s here). A failure to load is logged, not raised: the
server must serve all the same (a module the preload raises from leaves no server at all),
and the workers then load what they need at their first page."""

import gc
import logging
import os

if os.environ.get("_AGGREGATOR_FORK_SERVER"):
    try:
        from .prepare import warm_up

        warm_up()
    except Exception:
        logging.getLogger(__name__).exception("the workers' fork server could not load what "
                                              "a page needs; each worker will load it itself")
    gc.freeze()
