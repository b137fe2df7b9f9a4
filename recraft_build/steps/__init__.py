"""Post-processing steps: pure bytes -> bytes functions, local or through a provider."""
