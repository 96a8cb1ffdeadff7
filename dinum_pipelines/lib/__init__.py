"""The pipeline's rules in plain Python, one folder per stage along the path of the data:

- `declare/`: what a dataset is (its registry entry, Table Schema, names, vocabularies) and the
  scaffolding that proposes one from a file (`dinum-pipelines add`);
- `storage/`: where files live (the data folder's layout, the raw store, the shared clean store);
- `ingest/`: 1. downloading an administration's file;
- `clean/`: 2. reading it into record batches and cleaning them into typed Parquet and CSV;
- `conformance/`: 3a. judging the source against its Table Schema, fault by fault (Validata's way);
- `quality/`: 3b. the quality rules on the clean table (Great Expectations, and the Arrow engine);
- `publish/`: 4. the udata client, publication, what changed, the column profile;
- `metrics/`: 5. usage counted from the catalog's log and pushed back;
- `monitoring/`: alerts and the one rule of lateness;
- `pipeline.py`: the chain, one function per step, which the Dagster assets (`defs/`) call.
"""
