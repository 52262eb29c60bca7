"""Inputs: loading and checking round files (arrays, texts, tables), watched sources, comparability."""
