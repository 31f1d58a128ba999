"""Alert delivery for kernel incidents.

Layout, modelled on Alertmanager's notifiers: a pure core (``model``, ``sanitize``,
``policy``, ``retry``, ``config``), a durable SQLite ``outbox``, one small module
per channel (``mail``, ``webhook``, ``slack``, ``alertmanager``, ``jsonfile``) over
a shared HTTP helper and retry policy, and the ``dispatcher`` that runs the
delivery threads. ``docs/alerts.md`` documents the options and the JSON schema.
"""
