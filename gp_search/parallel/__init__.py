"""Parallel trainings: the evaluation entry point and its backends (sequential, loky, Dask)."""
