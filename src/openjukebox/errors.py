"""The project's error for problems a user can fix: a bad file, a wrong option, a model that does not fit.

Its message names what was wrong (the file or the option) and says what to do. The command line
prints it as one line, ``openjukebox: error: <message>``, and exits with status 2; Python callers
catch it (it is a ``ValueError``).
"""

from __future__ import annotations


class UserError(ValueError):
    """A problem with the user's input; the message says what was wrong and what to do."""
