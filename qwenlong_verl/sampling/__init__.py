"""Phased-context curriculum and difficulty-aware retrospective sampling inside verl's V1 trainer."""
