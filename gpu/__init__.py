"""diffmix.gpu"""
