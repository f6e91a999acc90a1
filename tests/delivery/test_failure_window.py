"""The circuit breaker's sliding window of attempts (pure logic, no I/O)."""

from hookyard_common.delivery.failure_window import FailureWindow


def test_counts_only_the_last_window():
    window = FailureWindow(10.0)
    for t in range(10):
        window.record(100.0 + t, failed=t % 2 == 0)
    assert window.counts(109.5) == (10, 5)
    assert window.counts(114.5) == (5, 2), "the five oldest seconds have slid out"
    assert window.counts(200.0) == (0, 0)
    window.record(200.0, failed=True)
    assert window.counts(200.0) == (1, 1), "a reused bucket starts afresh"


def test_trips_on_rate_with_a_minimum_volume():
    window = FailureWindow(60.0)
    for n in range(9):
        window.record(float(n), failed=True)
    assert not window.trips(9.0, 0.7, 10), "nine failures are below the minimum volume"
    window.record(9.0, failed=True)
    assert window.trips(9.0, 0.7, 10)


def test_a_flaky_endpoint_stays_below_the_rate():
    window = FailureWindow(60.0)
    for n in range(40):  # five failures in a row, then five successes, over and over
        window.record(float(n), failed=(n // 5) % 2 == 0)
        assert not window.trips(float(n), 0.7, 10), n
    assert not window.is_empty(40.0) and window.is_empty(200.0)
    window.clear()
    assert window.counts(40.0) == (0, 0)
