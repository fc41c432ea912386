"""Tests of updl-server's HTTP API against a live server, and of its pure functions."""
