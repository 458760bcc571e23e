"""Lectern's shared platform: contracts, topology, settings, database, telemetry, LLM client.

The only code the services share. A service never imports another service.
"""
