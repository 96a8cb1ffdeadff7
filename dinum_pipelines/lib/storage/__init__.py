"""Where files live: the data folder's layout, the raw store of downloaded versions, the shared clean store for several machines."""
