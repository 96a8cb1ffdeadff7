"""The registered datasets: one folder per dataset, its `defs.yaml` a `Dataset` component (components/dataset.py)."""
