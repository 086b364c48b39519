"""Operating it: the daemon, the operator's views and corrections, the command line."""
