"""Sinks: where a finished exchange goes (metrics, log, recorder).

A sink never affects the client's response: ``emit_all`` contains failures.
"""
