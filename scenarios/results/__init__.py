"""A run's results files: the declarative schema, the writers and readers, the household
table, the output directory.
"""
