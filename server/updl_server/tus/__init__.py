"""Resumable uploads over tus 1.0."""
