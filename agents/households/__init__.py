"""The households: their static table and the community's state over the run."""
