"""xai: explain deep-learning models' predictions in batch, from the command line."""

__version__ = "0.1.0"
