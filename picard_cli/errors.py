"""User-facing errors: the CLI prints their message as one line and exits non-zero."""


class PicardError(Exception):
    """An error caused by the user's input or environment (not a bug)."""


class RecipeError(PicardError):
    """Malformed recipe, unknown key, wrong type or out-of-range value."""


class DataError(PicardError):
    """Data missing or unreadable."""
