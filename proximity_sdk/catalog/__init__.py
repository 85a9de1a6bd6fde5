"""The app catalog: format, loading, validation, secret generation."""
