"""The one exception type a user sees: bad input, reported as a single line with exit status 2."""


class GroklabError(Exception):
    """An error caused by the user's input (config, run id, paths), not by a bug.

    The CLI prints it as one line and exits with status 2; the message names the
    offending field and what is allowed.
    """


class ConfigError(GroklabError):
    """A config field has an unknown name, a wrong type or an out-of-range value."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)
