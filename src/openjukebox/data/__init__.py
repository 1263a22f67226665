"""Data set builders: each writes a JSONL manifest that every training command reads."""
