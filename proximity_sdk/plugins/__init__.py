"""pluggy hookspecs and the typed facade over them."""
