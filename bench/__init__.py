"""Benchmarks of the chat beside a bare Socket.IO relay on the same stack (see README.md)."""
