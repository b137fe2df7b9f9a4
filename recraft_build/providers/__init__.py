"""Providers: who makes the pictures (recraft, replicate, placeholder)."""
