"""Operator scripts (deployment checks). Not part of the installed package."""
