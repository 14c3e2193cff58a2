"""trainers: placeholder package (grows in later releases)."""
