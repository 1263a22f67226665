"""Lyrics: tokenizers, timed lyrics and lyric windows, and lyric-to-audio alignment."""
