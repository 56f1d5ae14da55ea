"""Command-line programs; train.py, eval.py and inference.py call into these."""
