"""tasks: placeholder package (grows in later releases)."""
