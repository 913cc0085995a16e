"""Datasets read from files: the IDX reader and the MNIST files."""
