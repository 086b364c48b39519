"""Importing this module loads what a worker's first page would (prepare.warm_up): the server
process the worker processes fork from imports it once (operate/workers.py, multiprocessing's
forkserver preload), so that every worker forked from it starts warm, sharing those pages,
instead of importing and loading them itself (about half a second of a core each).

Then every object it holds is moved out of the garbage collector's reach (`gc.freeze`, as
Python's documentation advises before forking without exec): a worker's collections do not
touch them, so their pages stay shared with the server instead of being copied into each
worker, and the server's own exit, after the daemon's, skips a last collection of them
(0.11 -> 0.02 s here)."""

import gc

from .prepare import warm_up

warm_up()
gc.freeze()
