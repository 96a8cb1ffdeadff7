"""Stage 1, ingest: downloading an administration's file (retries, conditional GET, checksums)."""
