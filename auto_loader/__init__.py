"""auto_loader: placeholder package (grows in later releases)."""
