"""Video codecs as implicit neural representations (NeRV, HNeRV): not implemented yet (issue 4)."""
