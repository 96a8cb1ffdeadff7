"""Stage 2, clean: reading any source into record batches and cleaning them into typed Parquet and CSV, in bounded memory."""
