"""diffmix.validation"""
