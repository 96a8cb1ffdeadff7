"""Stage 5, metrics: the catalog's usage log counted into daily, monthly and total tables, and pushed back to the catalog."""
