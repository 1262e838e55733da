"""The one exception the engine raises for bad user input.

It names the key, the value and what is allowed, so the CLI and the GUI can show it verbatim.
"""


class ProblemError(ValueError):
    """A problem description (TOML key, GUI field or API argument) holds a value that is not allowed."""

    def __init__(self, key: str, value, allowed: str):
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"{key} = {value!r} is not allowed: expected {allowed}")
