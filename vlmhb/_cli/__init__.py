"""Command-line groups; ``vlmhb.cli`` wires them together."""
