"""Model families, one folder each: config.py, model.py, weights.py."""
