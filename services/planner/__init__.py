"""Planner: the planning chat and the course process."""
