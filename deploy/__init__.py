"""Running the chat as several workers behind nginx (``deploy/cluster.py``, docs/deploy.md)."""
