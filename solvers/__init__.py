"""diffmix.solvers"""
