"""Reliability suite (issue 5): real crashes, outages and bad input, on both backends."""
