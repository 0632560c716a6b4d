"""The sans-I/O core: records, findings, the rule engine. Standard library only."""

from auditproxy.core.errors import ConfigError
from auditproxy.core.findings import Finding, RetryAdvice, Severity, is_compliant
from auditproxy.core.model import Body, Exchange, RequestHead, ResponseHead

__all__ = [
    "Body",
    "ConfigError",
    "Exchange",
    "Finding",
    "RequestHead",
    "ResponseHead",
    "RetryAdvice",
    "Severity",
    "is_compliant",
]
