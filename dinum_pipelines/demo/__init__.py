"""Sample administrations for the demo and the end-to-end tests.

The pipeline's hard part is the mess real administrations publish (cp1252 CSVs with decimal
commas, nested JSON, codes that lose their leading zeros, files that break their own rules). The demo
cannot rely on real servers or on files a user does not have, so `administrations` generates
synthetic but realistic files deterministically and `server` serves them over real HTTP on
loopback, with the ETag / Last-Modified behaviour the ingest relies on.
"""
