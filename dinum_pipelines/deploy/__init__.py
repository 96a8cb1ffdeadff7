"""Deployments of the code location that a newcomer starts with one command (see README.md)."""
