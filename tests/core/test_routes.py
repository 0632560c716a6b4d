"""RouteLabeler and method_label: bounded metric labels."""

from __future__ import annotations

import pytest

from auditproxy.core.routes import RouteLabeler, method_label, prefix_matches, routing_path

AUTO = [
    ("/orders/42", "/orders/{id}"),
    ("/orders/42/lines/7", "/orders/{id}/lines/{id}"),
    ("/orders/3f2504e0-4f89-11d3-9a0c-0305e82c3301", "/orders/{id}"),
    ("/blobs/deadbeef01", "/blobs/{id}"),
    ("/tokens/Ab3dE5gH7jK9mN1pQ3sT5", "/tokens/{id}"),
    ("/orders?page=2&limit=20", "/orders"),
    ("/orders/42?x=1", "/orders/{id}"),
    ("/orders/exports", "/orders/exports"),
    ("/api/v1/customer-accounts", "/api/v1/customer-accounts"),
    ("/very-long-but-plain-resource-name", "/very-long-but-plain-resource-name"),
    ("", "/"),
    ("/", "/"),
]


@pytest.mark.parametrize(("path", "label"), AUTO, ids=[p or "empty" for p, _ in AUTO])
def test_automatic_templates(path: str, label: str) -> None:
    """Numeric, UUID, hex and long opaque segments collapse to {id}; names stay."""
    assert RouteLabeler().label(path) == label


def test_configured_templates_win() -> None:
    """A configured template matches before the automatic one, in the order given."""
    labeler = RouteLabeler(["/orders/{id}/lines/{line}", "/orders/{id}", "/users/{name}"])
    assert labeler.label("/orders/42/lines/7") == "/orders/{id}/lines/{line}"
    assert labeler.label("/orders/abc") == "/orders/{id}"
    assert labeler.label("/orders/abc/") == "/orders/{id}"
    assert labeler.label("/users/alice?x=1") == "/users/{name}"
    assert labeler.label("/users") == "/users"


def test_literal_template_beats_placeholder() -> None:
    """A literal template wins over a placeholder one listed before it."""
    labeler = RouteLabeler(["/orders/{id}", "/orders/exports"])
    assert labeler.label("/orders/exports") == "/orders/exports"
    assert labeler.label("/orders/exp0rts") == "/orders/{id}"


def test_cap_then_other() -> None:
    """After max_routes distinct automatic labels, new ones become 'other'; known ones stay."""
    labeler = RouteLabeler(["/fixed/{id}"], max_routes=3)
    labels = [labeler.label(f"/r{i}/x") for i in range(6)]
    assert labels == ["/r0/x", "/r1/x", "/r2/x", "other", "other", "other"]
    assert labeler.label("/r1/x") == "/r1/x"
    assert labeler.label("/fixed/9") == "/fixed/{id}"  # configured templates are always allowed
    assert labeler.distinct == 3


def test_cache_is_bounded() -> None:
    """The path cache never grows past its size, and evicted paths still label correctly."""
    labeler = RouteLabeler(cache_size=8)
    for i in range(100):
        assert labeler.label(f"/orders/{i}") == "/orders/{id}"
    assert len(labeler._cache) == 8
    assert labeler.label("/orders/0") == "/orders/{id}"


@pytest.mark.parametrize(
    ("method", "label"),
    [("GET", "GET"), ("PATCH", "PATCH"), ("OPTIONS", "OPTIONS"), ("PROPFIND", "OTHER"),
     ("get", "OTHER"), ("", "OTHER"), ("BREW", "OTHER")],
)  # fmt: skip
def test_method_label(method: str, label: str) -> None:
    """Standard methods keep their name; anything else is OTHER."""
    assert method_label(method) == label
    assert RouteLabeler.method_label(method) == label


@pytest.mark.parametrize(
    ("target", "path", "under_orders"),
    [
        ("/orders", "/orders", True),
        ("/orders/1?x=/ordersx", "/orders/1", True),
        ("/orders%2F2", "/orders/2", True),
        ("/ordersx", "/ordersx", False),
        ("/orders%78", "/ordersx", False),
        ("/order", "/order", False),
    ],
)
def test_routing_path_is_what_a_prefix_is_matched_against(
    target: str, path: str, under_orders: bool
) -> None:
    """The decoded path without the query; ``/orders`` covers it segment-wise only."""
    assert routing_path(target) == path
    assert prefix_matches("/orders", routing_path(target)) is under_orders
