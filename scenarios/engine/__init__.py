"""The engine: the community's inputs, the interval step, the baseline, the feeder stage,
the batch loop and the run.
"""
