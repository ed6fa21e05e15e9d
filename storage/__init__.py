"""paperbell's storage layer: the only package that speaks SQL. It never imports `bot`."""
