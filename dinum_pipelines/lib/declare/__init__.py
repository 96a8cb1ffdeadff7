"""What a dataset is: its declaration (registry), its Table Schema, names and vocabularies, and the scaffolding that proposes one from a file."""
