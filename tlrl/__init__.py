"""tlrl: transfer learning and representation learning for small materials data."""

__version__ = "0.1.0"
