"""Gateway: REST + SSE for web clients, auth, the event log."""
