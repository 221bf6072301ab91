"""Stage 3, gate: budgets, checks, comparisons and reports, shared by the pytest plugin and the
``irene budgets`` command line.
"""
