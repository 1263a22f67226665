"""openjukebox: a fast, installable re-implementation of OpenAI Jukebox."""

__version__ = "0.1.0"
