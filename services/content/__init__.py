"""Content: lessons per module and learner profile."""
