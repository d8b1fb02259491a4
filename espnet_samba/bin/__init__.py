"""Command-line entry points where ESPnet's own are not enough; each adds its options and delegates to ESPnet."""
