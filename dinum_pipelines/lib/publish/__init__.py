"""Stage 4, publish: the udata client, publication of files and metadata, what changed, the column profile and the validation report extras."""
