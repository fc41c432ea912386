"""Where file contents live: blobs and the staged bytes of resumable uploads."""
