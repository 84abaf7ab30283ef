"""Output formats: one module per format, each an observer of the scan or a writer of results."""
