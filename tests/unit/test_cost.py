import pytest

from scavenger.cost import Prices, estimate
from scavenger.errors import ConfigError
from scavenger.records import Counts


def test_estimate_follows_the_documented_formula():
    counts = Counts(
        read_units=2_000_000, write_units=1_000_000, pages=900, messages=100, worker_ms=60_000
    )

    cost = estimate(counts, memory_mb=1024)

    assert cost.dynamodb_reads == pytest.approx(0.25)
    assert cost.dynamodb_writes == pytest.approx((1_000_000 + 900 + 200) * 0.625e-6)
    assert cost.lambda_compute == pytest.approx(60 * 0.0000166667)
    assert cost.lambda_requests == pytest.approx(100 * 0.2e-6)
    assert cost.total == pytest.approx(
        sum(v for k, v in cost.to_json().items() if k != "total"), abs=1e-5
    )


def test_prices_can_be_overridden_from_the_environment():
    prices = Prices.from_env({"SCAVENGER_PRICE_WRITE_UNIT": "0.000002"})
    assert prices.write_unit == 0.000002
    with pytest.raises(ConfigError, match="SCAVENGER_PRICE_READ_UNIT"):
        Prices.from_env({"SCAVENGER_PRICE_READ_UNIT": "cheap"})


def test_write_units_say_how_they_were_counted():
    from scavenger.cost import write_units_basis

    assert "one per deleted item" in write_units_basis("dynamodb-local")
    assert write_units_basis("moto") == "consumed capacity as reported"
