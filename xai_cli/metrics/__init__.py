"""Scores of explanations against ground truth, for audits and for our own tests."""
