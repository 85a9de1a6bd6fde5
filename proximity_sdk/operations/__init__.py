"""The operation engine and one module per operation."""
