"""Tools on top of schedules: plotting, finder suggestions, diagnostics (numpy core; matplotlib
imported lazily)."""
