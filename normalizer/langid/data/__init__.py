"""Word lists of the language step (a package so that setuptools ships the .txt files)."""
