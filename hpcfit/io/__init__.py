"""Writing results: atomic files, the run record, plots."""
