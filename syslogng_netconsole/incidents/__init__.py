"""Incidents: the Incident record, the SQLite store and the sink that stores and hands them to alerts."""
