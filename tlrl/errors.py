"""The one exception type that the CLI turns into a single readable line."""


class TlrlError(ValueError):
    """A problem with the user's input (file, columns, formulas, checkpoint, option)."""
