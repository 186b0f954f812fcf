"""picard: damped Picard iterations in neural networks, experiment by experiment."""

__version__ = "0.1.0"
